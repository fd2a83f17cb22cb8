package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storetest"
)

// MustOpenDB migrates a new, empty database and opens it; it is closed and
// dropped when the test ends.
func MustOpenDB(tb testing.TB) *DB {
	tb.Helper()
	u := testpeer.PostgresURL(tb)
	mustMigrate(tb, u)
	return mustOpen(tb, u)
}

func mustMigrate(tb testing.TB, u string) {
	tb.Helper()
	if _, _, err := Migrate(context.Background(), u); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
}

func mustOpen(tb testing.TB, u string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustConn opens a plain connection for the test to act as another client
// of the server would.
func mustConn(tb testing.TB, u string) *pgx.Conn {
	tb.Helper()
	c, err := pgx.Connect(context.Background(), u)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// withParams returns u with query parameters set.
func withParams(tb testing.TB, u string, kv ...string) string {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	q := p.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	// pgx reads "+" as itself, not as a space.
	p.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return p.String()
}

func dbName(tb testing.TB, u string) string {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimPrefix(p.Path, "/")
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func wantCode(t *testing.T, what string, err error, want signet.Code) {
	t.Helper()
	if got := signet.ErrorCode(err); got != want {
		t.Errorf("%s: code %q, want %q (err: %v)", what, got, want, err)
	}
}

// createTeam returns an Update function that creates a team and audits it.
func createTeam(name string) func(signet.Tx) error {
	return func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: name}); err != nil {
			return err
		}
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: name})
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}

func TestSchemaVersion(t *testing.T) {
	u := testpeer.PostgresURL(t)
	latest := LatestSchemaVersion()
	from, to, err := Migrate(t.Context(), u)
	if err != nil || from != 0 || to != latest {
		t.Fatalf("Migrate = %d, %d, %v; want 0, %d, nil", from, to, err, latest)
	}
	from, to, err = Migrate(t.Context(), u)
	if err != nil || from != latest || to != latest {
		t.Errorf("Migrate again = %d, %d, %v; want %d, %d, nil", from, to, err, latest, latest)
	}
	db := mustOpen(t, u)
	if v, err := db.SchemaVersion(t.Context()); err != nil || v != latest {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, latest)
	}
	rows, err := db.pool.Query(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for v := 1; v <= latest; v++ {
		want = append(want, v)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

// TestMigrationsMatchSQLite checks that the two stores number their
// migrations alike, so that version N means the same tables in both.
func TestMigrationsMatchSQLite(t *testing.T) {
	entries, err := os.ReadDir("../sqlite/migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, e := range entries {
		want = append(want, e.Name())
	}
	for _, m := range loadMigrations() {
		got = append(got, m.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("migrations = %v, sqlite has %v", got, want)
	}
}

func TestOpenRefusesSchema(t *testing.T) {
	latest := LatestSchemaVersion()
	checkRefusal := func(t *testing.T, what string, err error, versions ...int) {
		t.Helper()
		wantCode(t, what, err, signet.Unavailable)
		msg := signet.ErrorMessage(err)
		for _, v := range versions {
			if !strings.Contains(msg, fmt.Sprint(v)) {
				t.Errorf("%s: message %q does not name version %d", what, msg, v)
			}
		}
		if !strings.Contains(msg, "signet migrate") {
			t.Errorf("%s: message %q does not mention `signet migrate`", what, msg)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		u := testpeer.PostgresURL(t)
		db, err := Open(t.Context(), u)
		if err == nil {
			db.Close()
		}
		checkRefusal(t, "Open of an empty database", err, 0, latest)
	})

	t.Run("Behind", func(t *testing.T) {
		u := testpeer.PostgresURL(t)
		c := mustConn(t, u)
		if _, _, err := migrate(t.Context(), c, latest-1); err != nil {
			t.Fatal(err)
		}
		db, err := Open(t.Context(), u)
		if err == nil {
			db.Close()
		}
		checkRefusal(t, "Open", err, latest-1, latest)
		db, err = OpenOrInit(t.Context(), u)
		if err == nil {
			db.Close()
		}
		checkRefusal(t, "OpenOrInit", err, latest-1, latest)

		from, to, err := Migrate(t.Context(), u)
		if err != nil || from != latest-1 || to != latest {
			t.Errorf("Migrate = %d, %d, %v; want %d, %d, nil", from, to, err, latest-1, latest)
		}
		mustOpen(t, u)
	})

	t.Run("Ahead", func(t *testing.T) {
		u := testpeer.PostgresURL(t)
		mustMigrate(t, u)
		if _, err := mustConn(t, u).Exec(t.Context(), "INSERT INTO schema_migrations (version) VALUES ($1)", latest+1); err != nil {
			t.Fatal(err)
		}
		db, err := Open(t.Context(), u)
		if err == nil {
			db.Close()
		}
		checkRefusal(t, "Open", err, latest+1, latest)
		db, err = OpenOrInit(t.Context(), u)
		if err == nil {
			db.Close()
		}
		checkRefusal(t, "OpenOrInit", err, latest+1, latest)
		_, _, err = Migrate(t.Context(), u)
		checkRefusal(t, "Migrate", err, latest+1, latest)
	})
}

func TestOpenOrInit(t *testing.T) {
	u := testpeer.PostgresURL(t)
	// Replicas starting together on an empty database.
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = OpenOrInit(t.Context(), u) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("OpenOrInit %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
		if v, err := dbs[i].SchemaVersion(t.Context()); err != nil || v != LatestSchemaVersion() {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, LatestSchemaVersion())
		}
	}
	if errs[0] == nil {
		if err := dbs[0].Update(t.Context(), createTeam("ml")); err != nil {
			t.Errorf("Update after OpenOrInit: %v", err)
		}
	}
}

func TestMigrateConcurrent(t *testing.T) {
	u := testpeer.PostgresURL(t)
	const n = 4
	type result struct {
		from, to int
		err      error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			r.from, r.to, r.err = Migrate(t.Context(), u)
		})
	}
	wg.Wait()
	latest := LatestSchemaVersion()
	fresh := 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("Migrate %d: %v", i, r.err)
		case r.from == 0 && r.to == latest:
			fresh++
		case r.from != latest || r.to != latest:
			t.Errorf("Migrate %d = %d, %d; want 0, %d or %d, %d", i, r.from, r.to, latest, latest, latest)
		}
	}
	if fresh != 1 {
		t.Errorf("%d migrators applied the migrations, want exactly 1", fresh)
	}
	var count, head int
	err := mustConn(t, u).QueryRow(t.Context(),
		"SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM audit_head)").Scan(&count, &head)
	if err != nil || count != latest || head != 1 {
		t.Errorf("schema_migrations has %d rows and audit_head %d, %v; want %d and 1", count, head, err, latest)
	}
}

func TestDurability(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	checkNotDurable := func(t *testing.T, what string, err error) {
		t.Helper()
		wantCode(t, what, err, signet.Unavailable)
		if msg := signet.ErrorMessage(err); !strings.Contains(msg, "synchronous_commit") {
			t.Errorf("%s: message %q does not name synchronous_commit", what, msg)
		}
	}

	t.Run("URLOption", func(t *testing.T) {
		off := withParams(t, u, "options", "-c synchronous_commit=off")
		db, err := Open(t.Context(), off)
		if err == nil {
			db.Close()
		}
		checkNotDurable(t, "Open with synchronous_commit=off", err)
		db, err = OpenOrInit(t.Context(), off)
		if err == nil {
			db.Close()
		}
		checkNotDurable(t, "OpenOrInit with synchronous_commit=off", err)
		// Every setting that flushes the local WAL is durable enough.
		for _, v := range []string{"local", "remote_write", "on"} {
			db, err := Open(t.Context(), withParams(t, u, "options", "-c synchronous_commit="+v))
			if err != nil {
				t.Errorf("Open with synchronous_commit=%s: %v", v, err)
				continue
			}
			db.Close()
		}
	})

	t.Run("AlterDatabase", func(t *testing.T) {
		db := mustOpen(t, u)
		admin := mustConn(t, u)
		ident := pgx.Identifier{dbName(t, u)}.Sanitize()
		if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+ident+" SET synchronous_commit = off"); err != nil {
			t.Fatal(err)
		}
		db.pool.Reset() // new connections pick the setting up
		checkNotDurable(t, "Ping", db.Ping(t.Context()))
		checkNotDurable(t, "Update", db.Update(t.Context(), createTeam("ml")))
		if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+ident+" RESET synchronous_commit"); err != nil {
			t.Fatal(err)
		}
		db.pool.Reset()
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping after RESET: %v", err)
		}
	})

	t.Run("Session", func(t *testing.T) {
		// A connection that turned it off after it connected: Ping's own
		// check finds it.
		db := mustOpen(t, withParams(t, u, "pool_max_conns", "1"))
		set := func(v string) {
			c, err := db.pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if _, err := c.Exec(t.Context(), "SET synchronous_commit = "+v); err != nil {
				t.Fatal(err)
			}
		}
		set("off")
		checkNotDurable(t, "Ping", db.Ping(t.Context()))
		set("on")
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping after SET synchronous_commit = on: %v", err)
		}
	})
}

// TestReplicas runs writers on two DBs, as two replicas would, appending
// audit events while a reader tails the log with AfterID. Writers hold
// their transaction open for a moment after appending and some roll back,
// so that IDs handed out at insert time would commit out of order.
func TestReplicas(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	replicas := []*DB{mustOpen(t, u), mustOpen(t, u)}
	const writers, each = 8, 40
	errRollback := errors.New("rollback")

	var mu sync.Mutex
	committed := map[int64]string{} // ID → request id
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+1)
	for w := range writers {
		db := replicas[w%len(replicas)]
		wg.Go(func() {
			for i := range each {
				var evs []*signet.AuditEvent
				for k := range 1 + (w+i)%3 {
					evs = append(evs, &signet.AuditEvent{Action: signet.ActionPresignDownload,
						Outcome: signet.OutcomeAllowed, RequestID: fmt.Sprintf("w%d-%d-%d", w, i, k)})
				}
				rollback := i%7 == 3
				err := db.Update(t.Context(), func(tx signet.Tx) error {
					if err := tx.AppendAudit(evs...); err != nil {
						return err
					}
					time.Sleep(time.Duration(mrand.IntN(3)) * time.Millisecond)
					if rollback {
						return errRollback
					}
					return nil
				})
				switch {
				case rollback && !errors.Is(err, errRollback):
					errs <- fmt.Errorf("rolled-back Update: %v", err)
				case !rollback && err != nil:
					errs <- err
				case !rollback:
					mu.Lock()
					for _, e := range evs {
						if prev, dup := committed[e.ID]; dup {
							errs <- fmt.Errorf("ID %d given to %s and %s", e.ID, prev, e.RequestID)
						}
						committed[e.ID] = e.RequestID
					}
					mu.Unlock()
				}
			}
		})
	}

	// The reader tails the log through the other replica, as an export or
	// a verifier following the log would.
	stop := make(chan struct{})
	var seen []*signet.AuditEvent
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var after int64
		for {
			stopped := false
			select {
			case <-stop:
				stopped = true
			default:
			}
			var page []*signet.AuditEvent
			err := replicas[1].View(t.Context(), func(tx signet.Tx) (err error) {
				page, err = tx.Audit(signet.AuditFilter{AfterID: after, Limit: 50})
				return err
			})
			if err != nil {
				errs <- fmt.Errorf("reader: %v", err)
				return
			}
			seen = append(seen, page...)
			if len(page) > 0 {
				after = page[len(page)-1].ID
			}
			if stopped && len(page) < 50 {
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Every committed event, read exactly once, in ID order, and IDs 1..n
	// without gaps although some appends rolled back.
	if len(seen) != len(committed) {
		t.Errorf("reader saw %d events, %d were committed", len(seen), len(committed))
	}
	for i, e := range seen {
		if want := int64(i + 1); e.ID != want {
			t.Errorf("event %d read has ID %d, want %d: the reader skipped or repeated events", i, e.ID, want)
			break
		}
		if committed[e.ID] != e.RequestID {
			t.Errorf("event %d is %q, the writer recorded %q", e.ID, e.RequestID, committed[e.ID])
			break
		}
	}
	t.Logf("%d events committed by %d writers on %d replicas; the reader saw each once, in order", len(committed), writers, len(replicas))
}

// TestConnectorRace sets overlapping connectors for two teams from two
// replicas at once: exactly one may win.
func TestConnectorRace(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	a, b := mustOpen(t, u), mustOpen(t, u)
	const rounds = 10
	for r := range rounds {
		x, y := fmt.Sprintf("x%d", r), fmt.Sprintf("y%d", r)
		if err := a.Update(t.Context(), func(tx signet.Tx) error {
			if err := tx.CreateTeam(&signet.Team{Name: x}); err != nil {
				return err
			}
			return tx.CreateTeam(&signet.Team{Name: y})
		}); err != nil {
			t.Fatal(err)
		}
		bucket := fmt.Sprintf("b%d", r)
		start := make(chan struct{})
		var errA, errB error
		set := func(db *DB, team, prefix string) error {
			<-start
			return db.Update(t.Context(), func(tx signet.Tx) error {
				if err := tx.SetConnector(&signet.Connector{Team: team, Backend: signet.BackendS3, Bucket: bucket, Prefix: prefix}); err != nil {
					return err
				}
				time.Sleep(20 * time.Millisecond) // the other replica checks now
				return nil
			})
		}
		var wg sync.WaitGroup
		wg.Go(func() { errA = set(a, x, "data/") })
		wg.Go(func() { errB = set(b, y, "data/sub/") })
		close(start)
		wg.Wait()
		codes := []signet.Code{signet.ErrorCode(errA), signet.ErrorCode(errB)}
		slices.Sort(codes)
		if !slices.Equal(codes, []signet.Code{"", signet.Conflict}) {
			t.Errorf("round %d: SetConnector results %v, %v; want one success and one conflict", r, errA, errB)
		}
	}
}

// TestWriteTimeout holds the audit lock from another connection, as a
// stuck replica would, and checks that Update gives up with Unavailable at
// its deadline, that reads go on meanwhile, and that writes resume once the
// lock is released.
func TestWriteTimeout(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	db := mustOpen(t, u)
	db.WriteTimeout = 300 * time.Millisecond
	ctx := t.Context()

	other := mustConn(t, u)
	otx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otx.Exec(ctx, "SELECT last_id FROM audit_head FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	storetest.RunWriteLocked(t, db, db.WriteTimeout, func() error { return otx.Rollback(ctx) })
}

// TestUpdateDeadline checks that a caller's deadline shorter than
// WriteTimeout also ends the transaction, and that one whose fn outlives
// the deadline does not commit.
func TestUpdateDeadline(t *testing.T) {
	db := MustOpenDB(t)
	storetest.RunUpdateDeadline(t, db, func(d time.Duration) { db.WriteTimeout = d }, DefaultWriteTimeout)
}

// TestConnectionLost ends the server process of a transaction (SQLSTATE
// 57P01 admin_shutdown) and checks that Update reports Unavailable and the
// next one gets a fresh connection.
func TestConnectionLost(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	db := mustOpen(t, u)
	admin := mustConn(t, u)
	err := db.Update(t.Context(), func(stx signet.Tx) error {
		// A first statement begins the batch's transaction.
		if _, err := stx.(*tx).exec("SELECT 1"); err != nil {
			t.Fatalf("first statement: %v", err)
		}
		pid := stx.(*tx).tx.Conn().PgConn().PID()
		if _, err := admin.Exec(t.Context(), "SELECT pg_terminate_backend($1, 5000)", pid); err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		return stx.CreateTeam(&signet.Team{Name: "ml"})
	})
	wantCode(t, "Update whose connection was terminated", err, signet.Unavailable)
	t.Logf("Update whose connection was terminated: %v", err)
	if err := db.Update(t.Context(), createTeam("ml")); err != nil {
		t.Errorf("Update after reconnecting: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	// Port 1 on the loopback interface: nothing listens there.
	u := "postgres://postgres@127.0.0.1:1/signet?sslmode=disable&connect_timeout=5"
	db, err := Open(t.Context(), u)
	if err == nil {
		db.Close()
	}
	wantCode(t, "Open", err, signet.Unavailable)
	if msg := signet.ErrorMessage(err); !strings.HasPrefix(msg, "audit store unavailable: ") {
		t.Errorf("Open: message %q", msg)
	}
	_, _, err = Migrate(t.Context(), u)
	wantCode(t, "Migrate", err, signet.Unavailable)
	_, err = OpenOrInit(t.Context(), u)
	wantCode(t, "OpenOrInit", err, signet.Unavailable)
}

func TestOpenInvalidURL(t *testing.T) {
	for _, u := range []string{"postgres://u:s3cret@127.0.0.1:1/x?sslmode=bogus", "postgres://u:s3cret@[::1/x", "host=127.0.0.1 port=x"} {
		_, err := Open(t.Context(), u)
		wantCode(t, "Open("+u+")", err, signet.Invalid)
		if strings.Contains(signet.ErrorMessage(err), "s3cret") {
			t.Errorf("Open(%s): message %q shows the password", u, signet.ErrorMessage(err))
		}
		_, _, err = Migrate(t.Context(), u)
		wantCode(t, "Migrate("+u+")", err, signet.Invalid)
	}
}

func TestClosed(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	db, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantCode(t, "Update after Close", db.Update(t.Context(), createTeam("ml")), signet.Unavailable)
	wantCode(t, "Ping after Close", db.Ping(t.Context()), signet.Unavailable)
}

// TestErrorMapping provokes constraint errors from the server itself, with
// statements the Tx methods never send, and checks their codes.
func TestErrorMapping(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	c := mustConn(t, u)
	for _, tc := range []struct {
		name string
		sql  string
		want signet.Code
	}{
		{"Unique", "INSERT INTO settings (name, value) VALUES ('a', ''), ('a', '')", signet.Conflict},
		{"ForeignKey", "INSERT INTO members (team_id, user_id, role, created_at) VALUES (1, 1, 'viewer', now())", signet.NotFound},
		{"Check", "INSERT INTO teams (name, created_at) VALUES ('', now())", signet.Invalid},
		{"NotNull", "INSERT INTO settings (name) VALUES ('b')", signet.Invalid},
		{"Encoding", "SELECT convert_from('\\xff'::bytea, 'UTF8')", signet.Invalid},
		{"UndefinedTable", "SELECT * FROM nope", signet.Internal},
	} {
		_, err := c.Exec(t.Context(), tc.sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a server error", tc.name, err)
			continue
		}
		err = storeError("test", err, "")
		wantCode(t, tc.name+" ("+pe.Code+")", err, tc.want)
		if msg := strings.ToLower(signet.ErrorMessage(err)); strings.Contains(msg, "insert") || strings.Contains(msg, "select") {
			t.Errorf("%s: message %q shows SQL", tc.name, msg)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want signet.Code
	}{
		{&pgconn.PgError{Code: "23505"}, signet.Conflict},
		{&pgconn.PgError{Code: "23503"}, signet.NotFound},
		{&pgconn.PgError{Code: "23514"}, signet.Invalid},
		{&pgconn.PgError{Code: "57P01"}, signet.Unavailable},
		{&pgconn.PgError{Code: "57P03"}, signet.Unavailable},
		{&pgconn.PgError{Code: "53100"}, signet.Unavailable},
		{&pgconn.PgError{Code: "53300"}, signet.Unavailable},
		{&pgconn.PgError{Code: "08006"}, signet.Unavailable},
		{&pgconn.PgError{Code: "40P01"}, signet.Unavailable},
		{&pgconn.PgError{Code: "25006"}, signet.Unavailable},
		{&pgconn.PgError{Code: "58030"}, signet.Unavailable},
		{&pgconn.PgError{Code: "42P01"}, signet.Internal},
		{&pgconn.PgError{Code: "XX000"}, signet.Internal},
		{fmt.Errorf("commit: %w", context.DeadlineExceeded), signet.Unavailable},
		{&pgconn.ConnectError{}, signet.Unavailable},
		{&notDurableError{"synchronous_commit", "off"}, signet.Unavailable},
		{fmt.Errorf("reading: %w", errors.New("boom")), signet.Internal},
		{pgx.ErrNoRows, signet.NotFound},
	} {
		if got, msg := classify(tc.err); got != tc.want || msg == "" {
			t.Errorf("classify(%#v) = %q, %q; want %q", tc.err, got, msg, tc.want)
		}
	}
}

// TestContinueAfterRefusal checks that a refused write leaves the
// transaction usable, as it is with SQLite: PostgreSQL would abort the
// whole transaction on a failed statement.
func TestContinueAfterRefusal(t *testing.T) {
	db := MustOpenDB(t)
	err := db.Update(t.Context(), func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "ml"}); err != nil {
			return err
		}
		if err := tx.CreateUser(&signet.User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(&signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h")}); err != nil {
			return err
		}
		if err := tx.CreateUpload(&signet.Upload{ID: "u1", Team: "ml"}); err != nil {
			return err
		}
		for what, c := range map[string]struct {
			err  error
			want signet.Code
		}{
			"CreateTeam twice":      {tx.CreateTeam(&signet.Team{Name: "ml"}), signet.Conflict},
			"CreateUser twice":      {tx.CreateUser(&signet.User{Name: "alice"}), signet.Conflict},
			"CreateAPIKey twice":    {tx.CreateAPIKey(&signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h")}), signet.Conflict},
			"CreateUpload twice":    {tx.CreateUpload(&signet.Upload{ID: "u1", Team: "ml"}), signet.Conflict},
			"SetMember of nobody":   {tx.SetMember(&signet.Member{Team: "ml", User: "bob", Role: signet.RoleViewer}), signet.NotFound},
			"CreateTeam with NUL":   {tx.CreateTeam(&signet.Team{Name: "a\x00b"}), signet.Invalid},
			"CreateUser not UTF-8":  {tx.CreateUser(&signet.User{Name: "\xff"}), signet.Invalid},
			"SetSetting with NUL":   {tx.SetSetting("x", "\x00"), signet.Invalid},
			"Team with NUL":         {func() error { _, err := tx.Team("ml\x00"); return err }(), signet.NotFound},
			"Upload not UTF-8":      {func() error { _, err := tx.Upload("ml", "\xffu1"); return err }(), signet.NotFound},
			"RevokeAPIKey with NUL": {tx.RevokeAPIKey("k1\x00", time.Time{}), signet.NotFound},
		} {
			wantCode(t, what, c.err, c.want)
		}
		if err := tx.CreateTeam(&signet.Team{Name: "cv"}); err != nil {
			return err
		}
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "cv"})
	})
	if err != nil {
		t.Fatalf("Update that went on after refusals: %v", err)
	}
	err = db.View(t.Context(), func(tx signet.Tx) error {
		ts, err := tx.Teams()
		if len(ts) != 2 {
			t.Errorf("Teams = %d, want 2", len(ts))
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// TestAuditAnyBytes records what PostgreSQL text cannot hold (NUL, invalid
// UTF-8) and backslashes, and reads it back and filters on it exactly.
func TestAuditAnyBytes(t *testing.T) {
	db := MustOpenDB(t)
	odd := []string{"ml\x00", "\xff\xfeml", `ml\x00`, `a\b`, "ü\uFFFD", "ml", "A", `\x41`}
	var in []*signet.AuditEvent
	for i, s := range odd {
		in = append(in, &signet.AuditEvent{
			Action: signet.ActionPresignUpload, Outcome: signet.OutcomeDenied + s, Team: s, ActorUser: s,
			ObjectKey: "key/" + s, UserAgent: s, Reason: fmt.Sprintf("%d %q", i, s), Code: signet.Code(s),
		})
	}
	if err := db.Update(t.Context(), func(tx signet.Tx) error { return tx.AppendAudit(in...) }); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	err := db.View(t.Context(), func(tx signet.Tx) error {
		all, err := tx.Audit(signet.AuditFilter{})
		if err != nil {
			return err
		}
		if len(all) != len(in) {
			t.Fatalf("Audit = %d events, want %d", len(all), len(in))
		}
		for i, e := range all {
			w := in[i]
			if e.Team != w.Team || e.ActorUser != w.ActorUser || e.ObjectKey != w.ObjectKey ||
				e.UserAgent != w.UserAgent || e.Reason != w.Reason || e.Code != w.Code || e.Outcome != w.Outcome {
				t.Errorf("event %d = %#v, want %#v", i, *e, *w)
			}
		}
		for i, s := range odd {
			for _, f := range []signet.AuditFilter{{Team: s}, {Actor: s}, {Teams: []string{s, "\x00nope"}}} {
				got, err := tx.Audit(f)
				if err != nil {
					return err
				}
				if len(got) != 1 || got[0].ID != in[i].ID {
					t.Errorf("Audit(%#v) = %d events, want event %d alone", f, len(got), in[i].ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// Ordinary values are stored as they are, readable in psql.
	var team string
	if err := db.pool.QueryRow(t.Context(), "SELECT team FROM audit_events WHERE id = $1", in[5].ID).Scan(&team); err != nil || team != "ml" {
		t.Errorf("stored team = %q, %v; want ml", team, err)
	}
}

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain ü text", "plain ü text"},
		{`a\b`, `a\\b`},
		{"a\x00b", `a\x00b`},
		{"\xff", `\xff`},
		{"\xe2\x82", `\xe2\x82`}, // a truncated rune
		{"\uFFFD", "\uFFFD"},     // the replacement character itself is valid
		{`\x41`, `\\x41`},
	} {
		got := escapeText(tc.in)
		if got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !storable(got) {
			t.Errorf("escapeText(%q) = %q is not storable", tc.in, got)
		}
		if back := unescapeText(got); back != tc.in {
			t.Errorf("unescapeText(%q) = %q, want %q", got, back, tc.in)
		}
	}
}

func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "ml", `a\b`, "a\x00b", "\xff", `\x41`, "\\", "ü\uFFFD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escapeText(s)
		if !storable(e) {
			t.Errorf("escapeText(%q) = %q is not storable", s, e)
		}
		if back := unescapeText(e); back != s {
			t.Errorf("round trip of %q: %q, via %q", s, back, e)
		}
		if storable(s) && !strings.Contains(s, `\`) && e != s {
			t.Errorf("escapeText(%q) = %q, want it unchanged", s, e)
		}
	})
}

func TestIsolation(t *testing.T) {
	db := MustOpenDB(t)
	show := func(stx signet.Tx, setting string) string {
		var v string
		if err := stx.(*tx).tx.QueryRow(t.Context(), "SELECT current_setting($1)", setting).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	db.Update(t.Context(), func(stx signet.Tx) error {
		if got := show(stx, "transaction_isolation"); got != "read committed" {
			t.Errorf("Update isolation = %q, want read committed", got)
		}
		if got := show(stx, "transaction_read_only"); got != "off" {
			t.Errorf("Update read-only = %q, want off", got)
		}
		return nil
	})
	db.View(t.Context(), func(stx signet.Tx) error {
		if got := show(stx, "transaction_isolation"); got != "repeatable read" {
			t.Errorf("View isolation = %q, want repeatable read", got)
		}
		if got := show(stx, "transaction_read_only"); got != "on" {
			t.Errorf("View read-only = %q, want on", got)
		}
		return nil
	})
}

// TestHarden serves as an application role set up by Harden, and checks
// that this role can append to the audit log but not change or delete what
// it holds.
func TestHarden(t *testing.T) {
	// Registered before the tests' databases, so it runs after they are
	// dropped, taking the role's grants with them.
	role := appRole(t)
	asRole := func(t *testing.T, u string) string {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		p.User = url.User(role)
		return p.String()
	}
	hardened := func(t *testing.T) string {
		u := testpeer.PostgresURL(t)
		mustMigrate(t, u)
		if err := Harden(t.Context(), u, role); err != nil {
			t.Fatalf("Harden: %v", err)
		}
		return u
	}

	// Every Tx method once, as the role: its grants are enough.
	t.Run("Operations", func(t *testing.T) {
		db := mustOpen(t, asRole(t, hardened(t)))
		at := time.Now()
		err := db.Update(t.Context(), func(tx signet.Tx) error {
			return errors.Join(
				tx.CreateTeam(&signet.Team{Name: "ml"}),
				tx.CreateTeam(&signet.Team{Name: "cv"}),
				tx.UpdateTeam(&signet.Team{Name: "ml", UploadMaxExpiry: time.Hour}),
				tx.CreateUser(&signet.User{Name: "alice"}),
				tx.SetMember(&signet.Member{Team: "ml", User: "alice", Role: signet.RoleViewer}),
				tx.SetMember(&signet.Member{Team: "ml", User: "alice", Role: signet.RoleAdmin}),
				tx.SetMember(&signet.Member{Team: "cv", User: "alice", Role: signet.RoleAdmin}),
				tx.RemoveMember("cv", "alice"),
				tx.CreateAPIKey(&signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h")}),
				tx.TouchAPIKey("k1", at),
				tx.RevokeAPIKey("k1", at),
				tx.SetConnector(&signet.Connector{Team: "ml", Backend: signet.BackendS3, Bucket: "data", CredentialsRef: "c1"}),
				tx.SetConnector(&signet.Connector{Team: "ml", Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", CredentialsRef: "c1"}),
				tx.PutCredential(&signet.Credential{Ref: "c1", Team: "ml", Sealed: []byte{1}}),
				tx.PutCredential(&signet.Credential{Ref: "c1", Team: "ml", Sealed: []byte{2}}),
				tx.CreateUpload(&signet.Upload{ID: "u1", Team: "ml", ExpiresAt: at}),
				tx.SetUploadState("ml", "u1", signet.UploadAborted),
				tx.SetSetting("s", "1"),
				tx.SetSetting("s", "2"),
				tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}),
			)
		})
		if err != nil {
			t.Fatalf("writes as %s: %v", role, err)
		}
		err = db.View(t.Context(), func(tx signet.Tx) error {
			_, err1 := tx.Team("ml")
			_, err2 := tx.Teams()
			_, err3 := tx.User("alice")
			_, err4 := tx.Users()
			_, err5 := tx.Members("ml")
			_, err6 := tx.Memberships("alice")
			_, err7 := tx.APIKey("k1")
			_, err8 := tx.APIKeys("alice")
			_, err9 := tx.Connector("ml")
			_, err10 := tx.Connectors()
			_, err11 := tx.Credential("c1")
			_, err12 := tx.Upload("ml", "u1")
			_, err13 := tx.ExpiredUploads(at, 10)
			_, err14 := tx.Setting("s")
			_, err15 := tx.Audit(signet.AuditFilter{Team: "ml", Actor: "alice", Teams: []string{"ml"}})
			return errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err14, err15)
		})
		if err != nil {
			t.Errorf("reads as %s: %v", role, err)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping as %s: %v", role, err)
		}
	})

	t.Run("AppendOnly", func(t *testing.T) {
		u := hardened(t)
		if err := Harden(t.Context(), u, role); err != nil {
			t.Errorf("Harden again: %v", err)
		}
		db := mustOpen(t, asRole(t, u))
		if err := db.Update(t.Context(), createTeam("ml")); err != nil {
			t.Fatalf("Update as %s: %v", role, err)
		}
		app := mustConn(t, asRole(t, u))
		if _, err := app.Exec(t.Context(), `INSERT INTO audit_events (id, occurred_at, action, outcome)
			VALUES (1000, now(), 'x', 'y')`); err != nil {
			t.Errorf("INSERT as %s: %v", role, err)
		}
		// A GRANT by a role without the grant option only warns; what
		// follows must still fail.
		app.Exec(t.Context(), "GRANT UPDATE, DELETE ON audit_events TO "+pgx.Identifier{role}.Sanitize())
		for _, s := range []string{
			"UPDATE audit_events SET reason = 'rewritten'",
			"DELETE FROM audit_events",
			"TRUNCATE audit_events",
			"DROP TABLE audit_events",
			"ALTER TABLE audit_events DISABLE TRIGGER ALL",
			"DELETE FROM schema_migrations",
			"INSERT INTO schema_migrations (version) VALUES (99)",
		} {
			_, err := app.Exec(t.Context(), s)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Errorf("%s as %s: %v, want insufficient_privilege (42501)", s, role, err)
			}
		}
		var n int
		if err := app.QueryRow(t.Context(), "SELECT count(*) FROM audit_events").Scan(&n); err != nil || n != 2 {
			t.Errorf("audit_events holds %d rows, %v; want 2", n, err)
		}
	})

	t.Run("EveryTable", func(t *testing.T) {
		u := testpeer.PostgresURL(t)
		mustMigrate(t, u)
		rows, _ := mustConn(t, u).Query(t.Context(), "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, p := range tablePrivileges {
			want = append(want, p.table)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("tables = %v; tablePrivileges covers %v", got, want)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		u := testpeer.PostgresURL(t)
		wantCode(t, "Harden before Migrate", Harden(t.Context(), u, role), signet.Unavailable)
		mustMigrate(t, u)
		wantCode(t, "Harden of a superuser", Harden(t.Context(), u, "postgres"), signet.Invalid)
		wantCode(t, "Harden of no role", Harden(t.Context(), u, ""), signet.Invalid)
		wantCode(t, "Harden as the role itself", Harden(t.Context(), asRole(t, hardened(t)), role), signet.PermissionDenied)
	})
}

func TestClock(t *testing.T) {
	db := MustOpenDB(t)
	storetest.RunClock(t, db, func(now func() time.Time) { db.Now = now })
}

func BenchmarkAppendAudit10k(b *testing.B) { storetest.BenchmarkAppendAudit10k(b, MustOpenDB(b)) }

func BenchmarkUpdateSingle(b *testing.B) { storetest.BenchmarkUpdateSingle(b, MustOpenDB(b)) }

// BenchmarkUpdateParallel measures audited commits from many goroutines:
// appends serialise on the audit head, so this is the ceiling that all
// replicas share.
func BenchmarkUpdateParallel(b *testing.B) {
	db := MustOpenDB(b)
	ctx := context.Background()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		ev := storetest.UpdateEvent(0)
		for pb.Next() {
			e := *ev
			if err := db.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(&e) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
