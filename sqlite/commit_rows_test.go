package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// TestGroupCommitDeferredRows mixes, in one group-committed transaction,
// Updates that only append one event (their rows are inserted together,
// several per INSERT, later in the batch), Updates that append one event
// and fail (nothing of theirs may remain), and Updates that append one
// event, read the log and then fail after a statement (rolled back to
// their savepoint, which must not take the rows deferred before it): the
// rows of every successful Update, and only those, are in the chain, which
// has neither gap nor fork, and a function's reads see the rows deferred
// before it.
func TestGroupCommitDeferredRows(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	errBoom := errors.New("boom")
	first := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, RequestID: "first"}
	const n = 150 // more than the largest multi-row INSERT
	errs := queueUpdates(t, db, first, n, func(i int, tx signet.Tx) error {
		ev := &signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
			RequestID: fmt.Sprint(i), GrantID: fmt.Sprintf("g%d", i), ExpiresAt: time.Now().Add(time.Hour)}
		if err := tx.AppendAudit(ev); err != nil {
			return err
		}
		switch i % 5 {
		case 1:
			return errBoom
		case 3:
			h, err := tx.AuditHead()
			if err != nil {
				return err
			}
			evs, err := tx.Audit(signet.AuditFilter{AfterID: h.Seq - 2, Limit: 5})
			if err != nil {
				return err
			}
			if len(evs) != 2 || evs[1].RequestID != ev.RequestID {
				return fmt.Errorf("read %d events after %d, want the one before and its own", len(evs), h.Seq-2)
			}
			return errBoom
		}
		return nil
	})
	want := map[string]bool{"first": true}
	for i, err := range errs {
		fails := i%5 == 1 || i%5 == 3
		switch {
		case fails && !errors.Is(err, errBoom), !fails && err != nil:
			t.Errorf("Update %d: %v", i, err)
		case err == nil:
			want[fmt.Sprint(i)] = true
		}
	}
	st := db.Stats()
	t.Logf("%d updates in %d commits", st.Updates, st.Commits)
	verifyDB(t, db, int64(len(want)))
	var got []*signet.AuditEvent
	err := db.View(ctx, func(tx signet.Tx) error {
		for after := int64(0); ; {
			evs, err := tx.Audit(signet.AuditFilter{AfterID: after, Limit: 1000})
			if err != nil || len(evs) == 0 {
				return err
			}
			got = append(got, evs...)
			after = evs[len(evs)-1].ID
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if !want[e.RequestID] {
			t.Errorf("event of request %q is in the log", e.RequestID)
		}
		delete(want, e.RequestID)
		if e.RequestID != "first" && (e.GrantID == "" || e.ExpiresAt.IsZero()) {
			t.Errorf("event of request %q lost its grant or expiry: %+v", e.RequestID, e)
		}
	}
	if len(want) > 0 {
		t.Errorf("events missing from the log: %v", want)
	}
}
