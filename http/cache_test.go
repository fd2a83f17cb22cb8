package http_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/sqlite"
)

// The server caches keys, users, memberships, teams and connectors. Each
// change made by another process on the same database file must apply at
// the next request, as it did when every request read them.
func TestCacheFollowsOtherProcess(t *testing.T) {
	e := newEnv(t)
	toks := e.seed("ml", "member")
	tok := toks["member"]
	other, err := sqlite.Open(context.Background(), e.DB.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	change := func(fn func(tx signet.Tx) error) {
		t.Helper()
		if err := other.Update(context.Background(), fn); err != nil {
			t.Fatal(err)
		}
	}
	var user string
	err = e.DB.View(context.Background(), func(tx signet.Tx) error {
		ms, err := tx.Members("ml")
		if err == nil {
			user = ms[0].User
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	presign := func(op string, want int, wantCode string) {
		t.Helper()
		for range 2 { // the second answer comes from the cache
			a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody(op, "a/b"))
			if a.Status != want || (wantCode != "" && a.code() != wantCode) {
				t.Fatalf("%s: %d %s; want %d %s", op, a.Status, a.Body, want, wantCode)
			}
		}
	}
	lastKey := func() string {
		evs := e.audit()
		return evs[len(evs)-1].ObjectKey
	}

	presign("download", http.StatusOK, "")
	// Team: allowed networks that exclude the client, then none.
	change(func(tx signet.Tx) error {
		return tx.UpdateTeam(&signet.Team{Name: "ml", AllowNetworks: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}})
	})
	presign("download", http.StatusForbidden, string(signet.PermissionDenied))
	change(func(tx signet.Tx) error { return tx.UpdateTeam(&signet.Team{Name: "ml"}) })
	presign("download", http.StatusOK, "")
	// Connector: a new prefix shows in the record of the next URL.
	change(func(tx signet.Tx) error {
		return tx.SetConnector(&signet.Connector{Team: "ml", Backend: "local", Bucket: "ml", Prefix: "p/"})
	})
	presign("download", http.StatusOK, "")
	if got := lastKey(); got != "p/a/b" {
		t.Errorf("object key after the connector changed = %q; want p/a/b", got)
	}
	// Membership: a viewer may download, not upload; a non-member neither.
	change(func(tx signet.Tx) error {
		return tx.SetMember(&signet.Member{Team: "ml", User: user, Role: signet.RoleViewer})
	})
	presign("upload", http.StatusForbidden, string(signet.PermissionDenied))
	presign("download", http.StatusOK, "")
	change(func(tx signet.Tx) error { return tx.RemoveMember("ml", user) })
	presign("download", http.StatusForbidden, string(signet.PermissionDenied))
	change(func(tx signet.Tx) error {
		return tx.SetMember(&signet.Member{Team: "ml", User: user, Role: signet.RoleMember})
	})
	presign("upload", http.StatusOK, "")
	// The key: revoked elsewhere, refused here at once.
	id, _, _ := signet.ParseAPIKeyToken(tok)
	change(func(tx signet.Tx) error { return tx.RevokeAPIKey(id, time.Now()) })
	presign("download", http.StatusUnauthorized, string(signet.Unauthenticated))
}

// A key's last use is recorded at most once per minute per process, from
// the cache as from the store.
func TestCacheTouchesKey(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	id, _, _ := signet.ParseAPIKeyToken(tok)
	lastUsed := func() time.Time {
		t.Helper()
		var k *signet.APIKey
		err := e.DB.View(context.Background(), func(tx signet.Tx) (err error) {
			k, err = tx.APIKey(id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if k.LastUsedAt == nil {
			return time.Time{}
		}
		return *k.LastUsedAt
	}
	e.do("GET", "/v1/whoami", tok, "")
	first := lastUsed()
	if !first.Equal(e.Clock.Now()) {
		t.Fatalf("last used = %v; want %v", first, e.Clock.Now())
	}
	e.Clock.Add(30 * time.Second)
	e.do("GET", "/v1/whoami", tok, "")
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last used after 30 s = %v; want unchanged %v", got, first)
	}
	e.Clock.Add(31 * time.Second)
	e.do("GET", "/v1/whoami", tok, "")
	if got := lastUsed(); !got.Equal(e.Clock.Now()) {
		t.Errorf("last used after 61 s = %v; want %v", got, e.Clock.Now())
	}
}
