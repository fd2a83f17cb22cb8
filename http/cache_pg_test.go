package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/postgres"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// replica starts a server on store, signing local URLs.
func replica(t *testing.T, store signet.Store) string {
	t.Helper()
	dir := t.TempDir()
	keys, err := fileblob.LoadOrCreateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	var blob *fileblob.Store
	srv := sighttp.NewServer(sighttp.Config{
		Store: store,
		Backends: func(context.Context, *signet.Connector, map[string]string) (driver.Backend, error) {
			return blob, nil
		},
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	if blob, err = fileblob.Open(filepath.Join(dir, "blobs"), fileblob.Options{BaseURL: ts.URL, Keys: keys}); err != nil {
		t.Fatal(err)
	}
	return ts.URL
}

// Two replicas on one PostgreSQL database, the second under load (so its
// requests share reads of the change sequence): a key created through
// the first works on the second at its next request, a key revoked
// through the first is refused by the second at its next request, and a
// membership changed through the first replica's API (role lowered,
// member removed, member added back) is applied by the second at its
// next request.
func TestCacheReplicasPostgres(t *testing.T) {
	u := testpeer.PostgresURL(t)
	ctx := context.Background()
	if _, _, err := postgres.Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	dbs := make([]*postgres.DB, 2)
	for i := range dbs {
		db, err := postgres.Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	a, b := dbs[0], dbs[1]
	urlA, urlB := replica(t, a), replica(t, b)
	newKeyOf := func(user string) (string, string) {
		tok, id, hash := signet.NewAPIKeyToken()
		if err := a.Update(ctx, func(tx signet.Tx) error {
			return tx.CreateAPIKey(&signet.APIKey{ID: id, User: user, Hash: hash})
		}); err != nil {
			t.Fatal(err)
		}
		return tok, id
	}
	newKey := func() (string, string) { return newKeyOf("u") }
	err := a.Update(ctx, func(tx signet.Tx) error {
		for _, err := range []error{
			tx.CreateTeam(&signet.Team{Name: "ml"}),
			tx.SetConnector(&signet.Connector{Team: "ml", Backend: "local", Bucket: "ml"}),
			tx.CreateUser(&signet.User{Name: "u"}),
			tx.SetMember(&signet.Member{Team: "ml", User: "u", Role: signet.RoleMember}),
			tx.CreateUser(&signet.User{Name: "root", Admin: true}),
			tx.CreateUser(&signet.User{Name: "v"}),
			tx.SetMember(&signet.Member{Team: "ml", User: "v", Role: signet.RoleMember}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// send sends a request with tok to base and returns the status.
	send := func(method, url, tok, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	presignOp := func(op, tok string) int {
		return send("POST", urlB+"/v1/teams/ml/presign", tok, presignBody(op, "k"))
	}
	presign := func(tok string) int { return presignOp("download", tok) }

	// Load on replica 2 with a key of its own.
	loadTok, _ := newKey()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if st := presign(loadTok); st != http.StatusOK {
					t.Errorf("load: %d", st)
					return
				}
				served.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	var worst time.Duration
	for round := range 20 {
		tok, id := newKey()
		if st := presign(tok); st != http.StatusOK {
			t.Fatalf("round %d: key created through replica 1 answered %d on replica 2, want 200", round, st)
		}
		if err := a.Update(ctx, func(tx signet.Tx) error { return tx.RevokeAPIKey(id, time.Now()) }); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if st := presign(tok); st != http.StatusUnauthorized {
			t.Fatalf("round %d: key revoked through replica 1 answered %d on replica 2, want 401", round, st)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("20 rounds, each change applied at replica 2's next request (slowest refusal %v, %d requests of load served)",
		worst, served.Load())

	// Memberships, changed through replica 1's API by an instance admin;
	// user v's requests go to replica 2 (the cache holds v's memberships
	// after the first).
	rootTok, _ := newKeyOf("root")
	vTok, _ := newKeyOf("v")
	if st := presignOp("upload", vTok); st != http.StatusOK {
		t.Fatalf("member v: upload answered %d on replica 2, want 200", st)
	}
	steps := []struct {
		what, method, path, body string
		op                       string // v's next request on replica 2
		want                     int
	}{
		{"role lowered to viewer", "POST", "/v1/teams/ml/members", `{"user":"v","role":"viewer"}`, "upload", http.StatusForbidden},
		{"removed", "DELETE", "/v1/teams/ml/members/v", "", "download", http.StatusForbidden},
		{"added back as member", "POST", "/v1/teams/ml/members", `{"user":"v","role":"member"}`, "upload", http.StatusOK},
	}
	var worstMember time.Duration
	for round := range 10 {
		for _, st := range steps {
			if got := send(st.method, urlA+st.path, rootTok, st.body); got != http.StatusOK && got != http.StatusNoContent {
				t.Fatalf("round %d: %s through replica 1: %d", round, st.what, got)
			}
			start := time.Now()
			if got := presignOp(st.op, vTok); got != st.want {
				t.Fatalf("round %d: v %s through replica 1; replica 2's next %s answered %d, want %d",
					round, st.what, st.op, got, st.want)
			}
			worstMember = max(worstMember, time.Since(start))
		}
	}
	t.Logf("10 rounds of 3 membership changes through replica 1, each applied at replica 2's next request (slowest %v)", worstMember)
}
