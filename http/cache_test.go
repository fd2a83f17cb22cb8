package http_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
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

// Concurrent requests share reads of the change sequence; each still sees
// every change committed before it started.
func TestCacheConcurrent(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	run := func(want int) {
		t.Helper()
		errs := make(chan string, 64)
		for range 16 {
			go func() {
				for range 8 {
					req, _ := http.NewRequest("POST", e.URL+"/v1/teams/ml/presign", strings.NewReader(presignBody("download", "a")))
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					resp.Body.Close()
					if resp.StatusCode != want {
						errs <- resp.Status
						return
					}
				}
				errs <- ""
			}()
		}
		for range 16 {
			if msg := <-errs; msg != "" {
				t.Fatalf("want %d: %s", want, msg)
			}
		}
	}
	run(http.StatusOK)
	id, _, _ := signet.ParseAPIKeyToken(tok)
	if err := e.DB.Update(context.Background(), func(tx signet.Tx) error { return tx.RevokeAPIKey(id, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	run(http.StatusUnauthorized)
}

// The server caches a connector's unsealed credential, not its driver:
// every request asks OpenBackend for the driver, whose own cache serve
// empties on revocation so that the next URL gets a new signing session.
func TestCacheAsksForDriverEachRequest(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "admin", "member")
	body := `{"backend":"s3","bucket":"mlbucket","credentials":{"access_key_id":"AKIAEXAMPLE","secret_access_key":"s3cr3t"}}`
	if a := e.do("PUT", "/v1/teams/ml/connector", tok["admin"], body); a.Status != 200 {
		t.Fatalf("set connector: %d %s", a.Status, a.Body)
	}
	for i := range 3 {
		e.Secrets.Clear()
		if a := e.do("POST", "/v1/teams/ml/presign", tok["member"], presignBody("download", "x")); a.Status != 200 {
			t.Fatalf("presign %d: %d %s", i, a.Status, a.Body)
		}
		got, _ := e.Secrets.Load("mlbucket")
		if m, _ := got.(map[string]string); m["secret_access_key"] != "s3cr3t" {
			t.Errorf("presign %d: driver opened with %v", i, got)
		}
	}
}
