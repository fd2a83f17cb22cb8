package postgres

import (
	"net/url"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/faulttest"
	"github.com/signetdev/signet/internal/testpeer"
)

// faultWriteTimeout is the deadline the fault tests give the store, short
// so that a hung database is noticed quickly.
const faultWriteTimeout = time.Second

// maxRefusal bounds how long a refusal may take with the database hung: a
// request may wait out the deadline twice (its key lookup, then the record
// of the refusal), each time plus the grace pgx gives the server to cancel,
// and a loaded machine gets two seconds more. Without the deadlines it
// would wait for ever.
const maxRefusal = 2*(faultWriteTimeout+cancelGrace) + 2*time.Second

// openThroughProxy serves a new database through a proxy the test can cut
// or stall, between signet and the real PostgreSQL server.
func openThroughProxy(t *testing.T) (*faulttest.Env, *faulttest.Proxy, *DB) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p := faulttest.NewProxy(t, pu.Host)
	pu.Host = p.Addr()
	db := mustOpen(t, pu.String())
	db.WriteTimeout = faultWriteTimeout
	e := faulttest.Start(t, db)
	if a := e.Presign("before"); a.Status != 200 {
		t.Fatalf("presign before the fault: %d %s", a.Status, a.Body)
	}
	return e, p, db
}

// faultKey is the object checkFault asks a URL for once the fault is on.
const faultKey = "fault-key"

// checkFault applies fault to the proxy and checks the server fails
// closed: presign answers 503 with Retry-After and no URL, after between
// minWait and maxWait; /readyz reports it; once the proxy is restored the
// server serves again without a restart (recovering a request with id
// after).
func checkFault(t *testing.T, what string, fault func(*faulttest.Proxy, *DB), minWait, maxWait time.Duration, after string) {
	t.Helper()
	e, p, db := openThroughProxy(t)
	fault(p, db)
	a := e.Presign(faultKey)
	faulttest.FailedClosed(t, "presign "+what, a)
	t.Logf("%s: %d after %v: %s", what, a.Status, a.Elapsed, a.Body)
	if a.Elapsed < minWait || a.Elapsed > maxWait {
		t.Errorf("refusal took %v %s, want %v to %v", a.Elapsed, what, minWait, maxWait)
	}
	faulttest.NotReady(t, e, what)
	p.Restore()
	faulttest.Recovered(t, e, after)
}

// TestStoreDown: the database goes away (connections reset, new ones
// refused). Presign answers 503 with Retry-After and no URL, at once;
// /readyz reports it; when the database is back the server serves again
// without a restart.
func TestStoreDown(t *testing.T) {
	cut := func(p *faulttest.Proxy, _ *DB) { p.Cut() }
	checkFault(t, "with the database down", cut, 0, faultWriteTimeout+cancelGrace, "after-down")
}

// TestStoreHung: the database hangs (connections stay open, nothing comes
// back). The deadline fires: presign answers 503 with Retry-After and no
// URL within WriteTimeout and the grace for cancelling; /readyz reports
// it; when the database answers again the server serves without a
// restart.
func TestStoreHung(t *testing.T) {
	stall := func(p *faulttest.Proxy, _ *DB) { p.Stall() }
	checkFault(t, "with the database hung", stall, faultWriteTimeout, maxRefusal, "after-hung")
}

// TestAuditCommitHung: the database hangs at the moment the audit record
// is committed, the chain's head locked: the request's reads went through,
// and so did BEGIN and the lock of the head, sent together, but the insert
// of the record and the COMMIT, sent together next, never reach the
// server; the proxy holds everything from the first bytes that carry the
// record's object key. (The writer takes that path when it does not know
// the head; the test makes it forget.) The deadline fires: presign answers
// 503 with Retry-After and no URL; /readyz, which takes the head lock the
// hung transaction still holds, reports it; when the database answers
// again the server serves without a restart, the log one chain. (The held
// insert and COMMIT may then reach the server, so the refused request's
// record may be committed after all: a record without a URL, never a URL
// without one.)
func TestAuditCommitHung(t *testing.T) {
	stallCommit := func(p *faulttest.Proxy, db *DB) {
		// Read between requests: the writer is idle, and the next request
		// reaches it through a channel, after this write.
		db.head.skipUntil = time.Now().Add(time.Hour)
		p.StallOn(faultKey)
	}
	checkFault(t, "with the audit commit hung", stallCommit, faultWriteTimeout, maxRefusal, "after-commit-hung")
}

// TestAuditAppendHung: the same hang when the writer knows the head and
// sends BEGIN, the record's insert and COMMIT together (one round trip):
// nothing reaches the server, so no lock is held and /readyz may well be
// right to report ready; presign answers 503 with Retry-After and no URL
// once the deadline fires, and the next request is served at once, the
// log one chain.
func TestAuditAppendHung(t *testing.T) {
	e, p, db := openThroughProxy(t)
	if a := e.Presign("warm"); a.Status != 200 {
		t.Fatalf("presign: %d %s", a.Status, a.Body)
	}
	if db.headRaces.known.Load() == 0 {
		t.Fatalf("no batch was sent at the known head (%+v): the test would not test that path", db.head)
	}
	p.StallOn(faultKey)
	a := e.Presign(faultKey)
	faulttest.FailedClosed(t, "presign with the append hung", a)
	if a.Elapsed < faultWriteTimeout || a.Elapsed > maxRefusal {
		t.Errorf("refusal took %v, want %v to %v", a.Elapsed, faultWriteTimeout, maxRefusal)
	}
	faulttest.Recovered(t, e, "after-append-hung")
	p.Restore()
}
