package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/signetdev/signet"
)

// TestGroupCommit runs many Updates at once: they share commits, each
// one's changes stand or fall alone, and none is lost.
func TestGroupCommit(t *testing.T) {
	db := MustOpenDB(t)
	const n = 64
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx signet.Tx) error {
				if err := tx.CreateTeam(&signet.Team{Name: fmt.Sprintf("t%02d", i)}); err != nil {
					return err
				}
				if err := tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: fmt.Sprintf("t%02d", i)}); err != nil {
					return err
				}
				if i%4 == 0 {
					return errBoom // this one's team and event must vanish
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%4 == 0 && !errors.Is(err, errBoom) || i%4 != 0 && err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	var teams []*signet.Team
	var evs []*signet.AuditEvent
	db.View(context.Background(), func(tx signet.Tx) (err error) {
		if teams, err = tx.Teams(); err != nil {
			return err
		}
		evs, err = tx.Audit(signet.AuditFilter{Limit: 1000})
		return err
	})
	if len(teams) != n-n/4 || len(evs) != n-n/4 {
		t.Errorf("%d teams and %d events committed, want %d each", len(teams), len(evs), n-n/4)
	}
	for _, tm := range teams {
		var i int
		fmt.Sscanf(tm.Name, "t%d", &i)
		if i%4 == 0 {
			t.Errorf("team %s of a failed Update was committed", tm.Name)
		}
	}
	st := db.Stats()
	if st.Updates != n-n/4 || st.Commits >= st.Updates {
		t.Errorf("stats %+v: want %d updates in fewer commits", st, n-n/4)
	}
	t.Logf("%d updates in %d commits", st.Updates, st.Commits)
}

// TestUpdatePanic: a panicking fn fails alone and the writer lives on.
func TestUpdatePanic(t *testing.T) {
	db := MustOpenDB(t)
	err := db.Update(context.Background(), func(tx signet.Tx) error {
		tx.CreateTeam(&signet.Team{Name: "half"})
		panic("bug")
	})
	if signet.ErrorCode(err) != signet.Internal {
		t.Errorf("panicking Update: %v", err)
	}
	if err := db.Update(context.Background(), func(tx signet.Tx) error {
		return tx.CreateTeam(&signet.Team{Name: "whole"})
	}); err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
	db.View(context.Background(), func(tx signet.Tx) error {
		if _, err := tx.Team("half"); signet.ErrorCode(err) != signet.NotFound {
			t.Errorf("team of the panicking Update: %v", err)
		}
		return nil
	})
}
