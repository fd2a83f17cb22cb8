package http_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/postgres"
)

// TestReadyzSynchronousCommitPostgres: /readyz answers 503 while the
// database makes signet's new sessions run with synchronous_commit off
// (commits acknowledged before they are on disk), and 200 again once the
// setting is reset. The store's pool keeps connections 100 ms, so the
// readiness checks after the change run on new sessions, which take the
// database's setting.
func TestReadyzSynchronousCommitPostgres(t *testing.T) {
	ctx := context.Background()
	raw := testpeer.PostgresURL(t)
	if _, _, err := postgres.Migrate(ctx, raw); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	q.Set("pool_max_conn_lifetime", "100ms")
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logs syncbuf.Buffer
	srv := sighttp.NewServer(sighttp.Config{Store: db, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	readyz := func() int {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// await polls /readyz until it answers want, for up to 5 s.
	await := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := readyz()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz answered %d for 5 s, want %d", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	admin, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	alter := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" "+sql); err != nil {
			t.Fatal(err)
		}
	}

	await(http.StatusOK)
	alter("SET synchronous_commit = off")
	t.Cleanup(func() { alter("RESET synchronous_commit") })
	await(http.StatusServiceUnavailable)
	// Not a passing failure while connections were replaced: every check
	// on the new sessions is refused, and for the setting.
	time.Sleep(200 * time.Millisecond)
	for i := range 5 {
		if got := readyz(); got != http.StatusServiceUnavailable {
			t.Fatalf("check %d with synchronous_commit off: /readyz answered %d, want 503", i, got)
		}
		time.Sleep(120 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "synchronous_commit is off") {
		t.Errorf("the refusals' log does not name synchronous_commit:\n%s", logs.String())
	}

	alter("RESET synchronous_commit")
	await(http.StatusOK)
}
