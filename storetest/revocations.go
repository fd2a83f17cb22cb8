package storetest

import (
	"testing"
	"time"

	"github.com/signetdev/signet"
)

var revocationTests = []test{
	{"OK", testRevocationOK},
	{"FillsCreatedAt", testRevocationFillsCreatedAt},
	{"Since", testRevocationsSince},
	{"ErrConflict", testRevocationErrConflict},
	{"ErrInvalid", testRevocationErrInvalid},
	{"Grant", testGrantOK},
	{"GrantErrNotFound", testGrantErrNotFound},
}

func checkRevocation(t *testing.T, got, want *signet.Revocation) {
	t.Helper()
	if got.ID != want.ID || got.Team != want.Team || got.User != want.User || got.KeyID != want.KeyID || got.CreatedBy != want.CreatedBy {
		t.Errorf("revocation = %+v, want %+v", got, want)
	}
	if want.IssuedAfter.IsZero() != got.IssuedAfter.IsZero() {
		t.Errorf("IssuedAfter = %v, want %v", got.IssuedAfter, want.IssuedAfter)
	} else if !want.IssuedAfter.IsZero() {
		checkTime(t, "IssuedAfter", got.IssuedAfter, want.IssuedAfter)
	}
	checkTime(t, "IssuedBefore", got.IssuedBefore, want.IssuedBefore)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	for _, tm := range []time.Time{got.IssuedBefore, got.CreatedAt} {
		if tm.Location() != time.UTC {
			t.Errorf("time %v is not in UTC", tm)
		}
	}
}

func testRevocationOK(t *testing.T, s signet.Store) {
	in := []*signet.Revocation{
		{ID: "r1", Team: "ml", IssuedBefore: base, CreatedAt: base, CreatedBy: "alice"},
		{ID: "r2", User: "bob", KeyID: "k1", IssuedAfter: base.Add(-time.Hour), IssuedBefore: base.Add(-time.Minute), CreatedAt: base.Add(time.Second), CreatedBy: "root"},
		{ID: "r0", IssuedBefore: base.Add(-time.Hour), CreatedAt: base.Add(time.Second)},
	}
	mustUpdate(t, s, func(tx signet.Tx) error {
		for _, r := range in {
			cp := *r
			if err := tx.CreateRevocation(&cp); err != nil {
				return err
			}
			checkTime(t, "stored IssuedBefore", cp.IssuedBefore, r.IssuedBefore)
		}
		return nil
	})
	var got []*signet.Revocation
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.Revocations(time.Time{})
		return err
	})
	// Ordered by creation time, then id.
	want := []*signet.Revocation{in[0], in[2], in[1]}
	if len(got) != len(want) {
		t.Fatalf("got %d revocations, want %d", len(got), len(want))
	}
	for i := range want {
		checkRevocation(t, got[i], want[i])
	}
}

func testRevocationFillsCreatedAt(t *testing.T, s signet.Store) {
	before := time.Now()
	r := &signet.Revocation{ID: "r1", Team: "ml", IssuedBefore: base}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateRevocation(r) })
	checkRecent(t, "CreatedAt", r.CreatedAt, before, time.Now())
}

func testRevocationsSince(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error {
		for i, d := range []time.Duration{-2 * time.Hour, -time.Hour, 0, time.Hour} {
			r := &signet.Revocation{ID: string(rune('a' + i)), Team: "ml", IssuedBefore: base.Add(d), CreatedAt: base.Add(time.Duration(i) * time.Second)}
			if err := tx.CreateRevocation(r); err != nil {
				return err
			}
		}
		return nil
	})
	var got []*signet.Revocation
	mustView(t, s, func(tx signet.Tx) (err error) {
		// Strictly after: the one issued exactly at -1h is not listed.
		got, err = tx.Revocations(base.Add(-time.Hour))
		return err
	})
	checkNames(t, "revocations since -1h", names(got, func(r *signet.Revocation) string { return r.ID }), []string{"c", "d"})
}

func testRevocationErrConflict(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error {
		return tx.CreateRevocation(&signet.Revocation{ID: "r1", Team: "ml", IssuedBefore: base})
	})
	err := update(t, s, func(tx signet.Tx) error {
		return tx.CreateRevocation(&signet.Revocation{ID: "r1", User: "bob", IssuedBefore: base})
	})
	wantCode(t, "duplicate id", err, signet.Conflict)
	// A refused insert leaves the transaction usable.
	err = update(t, s, func(tx signet.Tx) error {
		if err := tx.CreateRevocation(&signet.Revocation{ID: "r1", IssuedBefore: base}); signet.ErrorCode(err) != signet.Conflict {
			t.Errorf("duplicate id in a transaction: %v, want conflict", err)
		}
		return tx.CreateRevocation(&signet.Revocation{ID: "r2", IssuedBefore: base})
	})
	if err != nil {
		t.Errorf("insert after a conflict: %v", err)
	}
}

func testRevocationErrInvalid(t *testing.T, s signet.Store) {
	for name, r := range map[string]*signet.Revocation{
		"no id":          {Team: "ml", IssuedBefore: base},
		"no end":         {ID: "r", Team: "ml"},
		"empty window":   {ID: "r", IssuedAfter: base, IssuedBefore: base},
		"reverse window": {ID: "r", IssuedAfter: base.Add(time.Second), IssuedBefore: base},
	} {
		err := update(t, s, func(tx signet.Tx) error { return tx.CreateRevocation(r) })
		wantCode(t, name, err, signet.Invalid)
	}
	var got []*signet.Revocation
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.Revocations(time.Time{})
		return err
	})
	if len(got) != 0 {
		t.Errorf("refused revocations were stored: %d", len(got))
	}
}

func testGrantOK(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error {
		return tx.AppendAudit(
			// A refusal carrying the id does not count.
			&signet.AuditEvent{Time: base.Add(-time.Minute), ActorUser: "mallory", ActorKey: "k9", Team: "ml",
				Action: signet.ActionPresignDownload, Outcome: signet.OutcomeDenied, GrantID: "g1"},
			&signet.AuditEvent{Time: base, ActorUser: "alice", ActorKey: "k1", Team: "ml",
				Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, GrantID: "g1"},
			&signet.AuditEvent{Time: base.Add(time.Hour), ActorUser: "bob", ActorKey: "k2", Team: "web",
				Action: signet.ActionPresignUpload, Outcome: signet.OutcomeAllowed, GrantID: "g2"},
		)
	})
	var g *signet.Grant
	mustView(t, s, func(tx signet.Tx) (err error) {
		g, err = tx.Grant("g1")
		return err
	})
	if g.ID != "g1" || g.Team != "ml" || g.User != "alice" || g.KeyID != "k1" {
		t.Errorf("grant g1 = %+v", g)
	}
	checkTime(t, "IssuedAt", g.IssuedAt, base)
	if g.IssuedAt.Location() != time.UTC {
		t.Errorf("IssuedAt %v is not in UTC", g.IssuedAt)
	}
}

func testGrantErrNotFound(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error {
		return tx.AppendAudit(&signet.AuditEvent{Time: base, Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "ml"})
	})
	for _, id := range []string{"", "nope"} {
		err := view(t, s, func(tx signet.Tx) error {
			_, err := tx.Grant(id)
			return err
		})
		wantCode(t, "grant "+id, err, signet.NotFound)
	}
}
