package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// usageTests cover AppendUsage, IssuedGrants and GrantUsage: the store's
// side of "issued versus used".
var usageTests = []test{
	{"AppendOK", testAppendUsageOK},
	{"AppendDuplicates", testAppendUsageDuplicates},
	{"AppendErrInvalid", testAppendUsageErrInvalid},
	{"AppendBytes", testAppendUsageBytes},
	{"IssuedGrants", testIssuedGrants},
	{"IssuedGrantsPaging", testIssuedGrantsPaging},
	{"GrantUsage", testGrantUsage},
	{"Prune", testPruneUsage},
}

// usageTx returns tx's usage methods; every store under test keeps usage
// events.
func usageTx(t *testing.T, tx signet.Tx) signet.UsageTx {
	t.Helper()
	u, err := signet.UsageOf(tx)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return u
}

func usageEvent(grant, addr string, status int, at time.Time) *signet.UsageEvent {
	return &signet.UsageEvent{
		Time: at, Source: signet.UsageSourceMinIO, RequestID: signet.NewID(8), GrantID: grant,
		Bucket: "b", ObjectKey: "team/k", Method: "GET", Operation: "GetObject", Status: status,
		BytesSent: 100, BytesReceived: 7, RemoteAddr: addr,
	}
}

func appendUsage(t *testing.T, s signet.Store, evs ...*signet.UsageEvent) int {
	t.Helper()
	var n int
	mustUpdate(t, s, func(tx signet.Tx) (err error) {
		n, err = usageTx(t, tx).AppendUsage(evs...)
		return err
	})
	return n
}

func testAppendUsageOK(t *testing.T, s signet.Store) {
	before := time.Now()
	a := usageEvent("g1", "192.0.2.1", 200, base)
	b := usageEvent("g1", "192.0.2.1", 206, base.Add(time.Second))
	b.RequestID = "" // no request id: never a duplicate
	c := usageEvent("g1", "192.0.2.1", 206, base.Add(time.Second))
	c.RequestID = ""
	if n := appendUsage(t, s, a, b, c); n != 3 {
		t.Errorf("AppendUsage stored %d, want 3", n)
	}
	after := time.Now()
	if a.ID == 0 || b.ID == 0 || c.ID == 0 || a.ID == b.ID || b.ID == c.ID {
		t.Errorf("IDs %d, %d, %d; want distinct and set", a.ID, b.ID, c.ID)
	}
	checkTime(t, "Time", a.Time, base)
	checkRecent(t, "IngestedAt", a.IngestedAt, before, after)
	us := grantUsage(t, s, "g1")
	if len(us) != 1 {
		t.Fatalf("GrantUsage = %d entries, want 1", len(us))
	}
	u := us[0]
	if u.GrantID != "g1" || u.RemoteAddr != "192.0.2.1" || u.Uses != 3 || u.Failed != 0 ||
		u.BytesSent != 300 || u.BytesReceived != 21 {
		t.Errorf("GrantUsage = %+v", u)
	}
	checkTime(t, "First", u.First, base)
	checkTime(t, "Last", u.Last, base.Add(time.Second))
}

func testAppendUsageDuplicates(t *testing.T, s signet.Store) {
	a := usageEvent("g1", "192.0.2.1", 200, base)
	if n := appendUsage(t, s, a); n != 1 {
		t.Fatalf("first append stored %d, want 1", n)
	}
	again := *a
	other := *a
	other.Source = signet.UsageSourceS3AccessLog // same request id, other source
	inBatch := usageEvent("g2", "192.0.2.2", 200, base)
	inBatchAgain := *inBatch
	if n := appendUsage(t, s, &again, &other, inBatch, &inBatchAgain); n != 2 {
		t.Errorf("append with duplicates stored %d, want 2", n)
	}
	if again.ID != 0 || inBatchAgain.ID != 0 {
		t.Errorf("duplicates got IDs %d, %d; want 0", again.ID, inBatchAgain.ID)
	}
	if other.ID == 0 || inBatch.ID == 0 {
		t.Errorf("new events got IDs %d, %d; want set", other.ID, inBatch.ID)
	}
	us := grantUsage(t, s, "g1", "g2")
	uses := map[string]int64{}
	for _, u := range us {
		uses[u.GrantID] += u.Uses
	}
	if uses["g1"] != 2 || uses["g2"] != 1 {
		t.Errorf("uses = %v, want g1:2 g2:1", uses)
	}
}

func testAppendUsageErrInvalid(t *testing.T, s signet.Store) {
	ok := usageEvent("g1", "192.0.2.1", 200, base)
	for name, mut := range map[string]func(e *signet.UsageEvent){
		"NoTime":    func(e *signet.UsageEvent) { e.Time = time.Time{} },
		"NoSource":  func(e *signet.UsageEvent) { e.Source = "" },
		"NoGrant":   func(e *signet.UsageEvent) { e.GrantID = "" },
		"NegBytes":  func(e *signet.UsageEvent) { e.BytesSent = -1 },
		"NegBytesR": func(e *signet.UsageEvent) { e.BytesReceived = -5 },
	} {
		bad := usageEvent("g1", "192.0.2.1", 200, base)
		mut(bad)
		err := update(t, s, func(tx signet.Tx) error {
			_, err := usageTx(t, tx).AppendUsage(ok, bad)
			return err
		})
		wantCode(t, name, err, signet.Invalid)
	}
	err := update(t, s, func(tx signet.Tx) error {
		_, err := usageTx(t, tx).AppendUsage(nil)
		return err
	})
	wantCode(t, "nil", err, signet.Invalid)
	us := grantUsage(t, s, "g1")
	if len(us) != 0 {
		t.Errorf("a refused batch stored events: %+v", us[0])
	}
}

// testAppendUsageBytes stores what a store may report byte for byte: keys
// and addresses that are not UTF-8 or hold NUL and backslashes.
func testAppendUsageBytes(t *testing.T, s signet.Store) {
	e := usageEvent("g\\1", "bad\x00addr\xff", 200, base)
	e.ObjectKey = "k\xff\\x00"
	appendUsage(t, s, e)
	us := grantUsage(t, s, "g\\1")
	if len(us) != 1 || us[0].GrantID != "g\\1" || us[0].RemoteAddr != "bad\x00addr\xff" {
		t.Errorf("GrantUsage = %+v, want the exact grant and address", us)
	}
}

// issue appends an audit event as presign does: allowed, with a grant id.
func issue(team, grant string, at time.Time) *signet.AuditEvent {
	return &signet.AuditEvent{
		Time: at, ActorUser: "alice", Team: team, Action: signet.ActionPresignDownload,
		Outcome: signet.OutcomeAllowed, Bucket: "b", ObjectKey: team + "/k", GrantID: grant,
		Method: "GET", ExpiresAt: at.Add(time.Hour), ClientIP: "192.0.2.9",
	}
}

func grantIDs(evs []*signet.AuditEvent) []string {
	return names(evs, func(e *signet.AuditEvent) string { return e.GrantID })
}

func testIssuedGrants(t *testing.T, s signet.Store) {
	denied := issue("red", "gd", base)
	denied.Outcome = signet.OutcomeDenied
	noGrant := issue("red", "", base)
	evs := []*signet.AuditEvent{
		issue("red", "g1", base),
		denied,
		noGrant,
		issue("blue", "g2", base.Add(time.Minute)),
		issue("red", "g3", base.Add(2*time.Minute)),
		issue("green", "g4", base.Add(3*time.Minute)),
	}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.AppendAudit(evs...) })
	for _, c := range []struct {
		name string
		f    signet.GrantFilter
		want []string
	}{
		{"All", signet.GrantFilter{}, []string{"g1", "g2", "g3", "g4"}},
		{"Team", signet.GrantFilter{Team: "red"}, []string{"g1", "g3"}},
		{"Teams", signet.GrantFilter{Teams: []string{"blue", "green"}}, []string{"g2", "g4"}},
		{"NoTeams", signet.GrantFilter{Teams: []string{}}, nil},
		{"Since", signet.GrantFilter{Since: base.Add(time.Minute)}, []string{"g2", "g3", "g4"}},
		{"Until", signet.GrantFilter{Until: base.Add(2 * time.Minute)}, []string{"g1", "g2"}},
		{"Window", signet.GrantFilter{Team: "red", Since: base.Add(time.Second), Until: base.Add(time.Hour)}, []string{"g3"}},
		{"After", signet.GrantFilter{AfterID: evs[3].ID}, []string{"g3", "g4"}},
	} {
		var got []*signet.AuditEvent
		mustView(t, s, func(tx signet.Tx) (err error) {
			got, err = usageTx(t, tx).IssuedGrants(c.f)
			return err
		})
		checkNames(t, c.name, grantIDs(got), c.want)
	}
	var got []*signet.AuditEvent
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = usageTx(t, tx).IssuedGrants(signet.GrantFilter{Team: "blue"})
		return err
	})
	if len(got) == 1 {
		e := got[0]
		if e.ID != evs[3].ID || e.ActorUser != "alice" || e.Method != "GET" || e.ClientIP != "192.0.2.9" ||
			!sameTime(e.ExpiresAt, evs[3].ExpiresAt) || e.Hash != evs[3].Hash {
			t.Errorf("IssuedGrants returned %+v, want the appended event %+v", e, evs[3])
		}
	}
}

func testIssuedGrantsPaging(t *testing.T, s signet.Store) {
	var evs []*signet.AuditEvent
	for i := range 120 {
		evs = append(evs, issue("red", fmt.Sprintf("g%03d", i), base))
	}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.AppendAudit(evs...) })
	var all []string
	f := signet.GrantFilter{Limit: 50}
	for range 10 {
		var page []*signet.AuditEvent
		mustView(t, s, func(tx signet.Tx) (err error) {
			page, err = usageTx(t, tx).IssuedGrants(f)
			return err
		})
		all = append(all, grantIDs(page)...)
		if len(page) < f.Limit {
			break
		}
		f.AfterID = page[len(page)-1].ID
	}
	checkNames(t, "paged", all, grantIDs(evs))
	var page []*signet.AuditEvent
	mustView(t, s, func(tx signet.Tx) (err error) {
		page, err = usageTx(t, tx).IssuedGrants(signet.GrantFilter{})
		return err
	})
	if len(page) != 100 {
		t.Errorf("default limit returned %d, want 100", len(page))
	}
}

func testGrantUsage(t *testing.T, s signet.Store) {
	appendUsage(t, s,
		usageEvent("g1", "192.0.2.1", 200, base),
		usageEvent("g1", "192.0.2.1", 403, base.Add(time.Second)),
		usageEvent("g1", "198.51.100.7", 206, base.Add(2*time.Second)),
		usageEvent("g2", "192.0.2.1", 404, base),
		usageEvent("other", "192.0.2.1", 200, base),
	)
	us := grantUsage(t, s, "g1", "g2", "unused")
	got := make([]string, 0, len(us))
	for _, u := range us {
		got = append(got, u.GrantID+" "+u.RemoteAddr)
		switch u.GrantID + " " + u.RemoteAddr {
		case "g1 192.0.2.1":
			if u.Uses != 1 || u.Failed != 1 || u.BytesSent != 200 {
				t.Errorf("g1 from 192.0.2.1: %+v, want 1 use, 1 failed, 200 bytes", u)
			}
			checkTime(t, "g1 First", u.First, base)
			checkTime(t, "g1 Last", u.Last, base.Add(time.Second))
		case "g2 192.0.2.1":
			if u.Uses != 0 || u.Failed != 1 {
				t.Errorf("g2: %+v, want 0 uses, 1 failed", u)
			}
		}
	}
	slices.Sort(got)
	checkNames(t, "GrantUsage", got, []string{"g1 192.0.2.1", "g1 198.51.100.7", "g2 192.0.2.1"})
	mustView(t, s, func(tx signet.Tx) (err error) {
		us, err = usageTx(t, tx).GrantUsage(nil)
		return err
	})
	if len(us) != 0 {
		t.Errorf("GrantUsage(nil) = %d entries", len(us))
	}
}

// testPruneUsage: PruneOrphanUsage deletes exactly the events served
// before its time whose grant no audit event carries (none here), and
// counts them.
func testPruneUsage(t *testing.T, s signet.Store) {
	old1 := usageEvent("g1", "192.0.2.1", 200, base)
	old2 := usageEvent("g2", "192.0.2.2", 200, base.Add(time.Minute-time.Microsecond))
	edge := usageEvent("g1", "192.0.2.1", 200, base.Add(time.Minute))
	young := usageEvent("g2", "192.0.2.2", 200, base.Add(time.Hour))
	appendUsage(t, s, old1, old2, edge, young)
	var n int64
	mustUpdate(t, s, func(tx signet.Tx) (err error) {
		n, err = usagePruner(t, tx).PruneOrphanUsage(base.Add(time.Minute))
		return err
	})
	if n != 2 {
		t.Errorf("PruneOrphanUsage deleted %d, want 2", n)
	}
	us := grantUsage(t, s, "g1", "g2")
	uses := map[string]int64{}
	for _, u := range us {
		uses[u.GrantID] += u.Uses
	}
	if uses["g1"] != 1 || uses["g2"] != 1 {
		t.Errorf("uses left %v, want one each (the event at the cut and the young one)", uses)
	}
	mustUpdate(t, s, func(tx signet.Tx) (err error) {
		n, err = usagePruner(t, tx).PruneOrphanUsage(base.Add(time.Minute))
		return err
	})
	if n != 0 {
		t.Errorf("second PruneOrphanUsage deleted %d, want 0", n)
	}
}

// usagePruner returns the usage pruning of tx, which retention uses.
func usagePruner(t *testing.T, tx signet.Tx) auditlog.UsagePruner {
	t.Helper()
	p, ok := tx.(auditlog.UsagePruner)
	if !ok {
		t.Fatalf("%T does not implement auditlog.UsagePruner", tx)
	}
	return p
}

// grantUsage reads the usage of grantIDs from s.
func grantUsage(t *testing.T, s signet.Store, grantIDs ...string) []*signet.AddressUsage {
	t.Helper()
	var us []*signet.AddressUsage
	mustView(t, s, func(tx signet.Tx) (err error) {
		us, err = usageTx(t, tx).GrantUsage(grantIDs)
		return err
	})
	return us
}
