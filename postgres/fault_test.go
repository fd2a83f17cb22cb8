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
func openThroughProxy(t *testing.T) (*faulttest.Env, *faulttest.Proxy) {
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
	return e, p
}

// faultKey is the object checkFault asks a URL for once the fault is on.
const faultKey = "fault-key"

// checkFault applies fault to the proxy and checks the server fails
// closed: presign answers 503 with Retry-After and no URL, after between
// minWait and maxWait; /readyz reports it; once the proxy is restored the
// server serves again without a restart (recovering a request with id
// after).
func checkFault(t *testing.T, what string, fault func(*faulttest.Proxy), minWait, maxWait time.Duration, after string) {
	t.Helper()
	e, p := openThroughProxy(t)
	fault(p)
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
	checkFault(t, "with the database down", (*faulttest.Proxy).Cut, 0, faultWriteTimeout+cancelGrace, "after-down")
}

// TestStoreHung: the database hangs (connections stay open, nothing comes
// back). The deadline fires: presign answers 503 with Retry-After and no
// URL within WriteTimeout and the grace for cancelling; /readyz reports
// it; when the database answers again the server serves without a
// restart.
func TestStoreHung(t *testing.T) {
	checkFault(t, "with the database hung", (*faulttest.Proxy).Stall, faultWriteTimeout, maxRefusal, "after-hung")
}

// TestAuditCommitHung: the database hangs at the moment the audit record
// is committed: the request's reads went through, and so did BEGIN and
// the lock of the chain's head, sent together, but the insert of the
// record and the COMMIT, sent together next (appendOnly), never reach the
// server; the proxy holds everything from the first bytes that carry the
// record's object key. The deadline fires: presign answers 503 with
// Retry-After and no URL; /readyz, which takes the head lock the hung
// transaction still holds, reports it; when the database answers again
// the server serves without a restart, the log one chain. (The held
// insert and COMMIT may then reach the server, so the refused request's
// record may be committed after all: a record without a URL, never a URL
// without one.)
func TestAuditCommitHung(t *testing.T) {
	stallCommit := func(p *faulttest.Proxy) { p.StallOn(faultKey) }
	checkFault(t, "with the audit commit hung", stallCommit, faultWriteTimeout, maxRefusal, "after-commit-hung")
}
