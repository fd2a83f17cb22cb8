package postgres

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// TestGroupCommit runs many Updates at once, held back until they all
// wait so that they share a batch: each one's changes stand or fall alone
// (a failed one, one that panics, one that carried on after a failed
// statement), a function reads its own appends, none is lost, the log is
// one chain, and they took fewer commits than Updates.
func TestGroupCommit(t *testing.T) {
	db := MustOpenDB(t)
	const n = 64
	errBoom := errors.New("boom")
	hold := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.Update(t.Context(), func(tx signet.Tx) error {
			<-hold // the writer waits here while the others queue
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "first"})
		})
	}()
	time.Sleep(50 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, n)
	heads := make([]signet.AuditHead, n)
	evs := make([]*signet.AuditEvent, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("t%02d", i)
			evs[i] = &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: name}
			errs[i] = db.Update(t.Context(), func(stx signet.Tx) error {
				if i%8 != 1 { // some Updates only append, as presign does
					if err := stx.CreateTeam(&signet.Team{Name: name}); err != nil {
						return err
					}
				}
				if err := stx.AppendAudit(evs[i]); err != nil {
					return err
				}
				switch i % 8 {
				case 0:
					return errBoom // this one's team and event must vanish
				case 3:
					panic("bug")
				case 5:
					// A failed statement the function ignores.
					stx.(*tx).exec("SELECT 1/0")
					return nil
				case 6:
					h, err := stx.AuditHead()
					heads[i] = h
					return err
				}
				return nil
			})
		})
	}
	time.Sleep(200 * time.Millisecond) // let them all queue
	close(hold)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first Update: %v", err)
	}
	want := 1
	wantTeams := map[string]bool{}
	for i, err := range errs {
		switch i % 8 {
		case 0:
			if !errors.Is(err, errBoom) {
				t.Errorf("Update %d: %v, want boom", i, err)
			}
		case 3, 5:
			if signet.ErrorCode(err) != signet.Internal {
				t.Errorf("Update %d: %v, want Internal", i, err)
			}
		default:
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
				continue
			}
			want++
			if i%8 != 1 {
				wantTeams[fmt.Sprintf("t%02d", i)] = true
			}
			if i%8 == 6 && (heads[i].Seq != evs[i].Seq || heads[i].Hash != evs[i].Hash) {
				t.Errorf("Update %d: AuditHead after its append = %d, want its own event %d", i, heads[i].Seq, evs[i].Seq)
			}
		}
	}
	var teams []*signet.Team
	var got []*signet.AuditEvent
	db.View(t.Context(), func(tx signet.Tx) (err error) {
		if teams, err = tx.Teams(); err != nil {
			return err
		}
		got, err = tx.Audit(signet.AuditFilter{Limit: 1000})
		return err
	})
	if len(got) != want || len(teams) != len(wantTeams) {
		t.Errorf("%d events and %d teams committed, want %d and %d", len(got), len(teams), want, len(wantTeams))
	}
	for _, tm := range teams {
		if !wantTeams[tm.Name] {
			t.Errorf("team %s of a failed Update was committed", tm.Name)
		}
	}
	verifyDB(t, db, int64(want))
	st := db.Stats()
	if st.Updates != int64(want) || st.Commits >= st.Updates/4 {
		t.Errorf("stats %+v: want %d updates in far fewer commits", st, want)
	}
	t.Logf("%d updates in %d commits", st.Updates, st.Commits)
}

// BenchmarkGroupCommit: 32 callers per core append one audit event each
// per Update, as concurrent presign requests do; it reports Updates per
// second and how many shared a commit.
func BenchmarkGroupCommit(b *testing.B) {
	db := MustOpenDB(b)
	var n atomic.Int64
	b.SetParallelism(32)
	before := db.Stats()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ev := &signet.AuditEvent{RequestID: fmt.Sprintf("req-%d", i), ActorUser: "alice", Team: "ml",
				Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, Store: signet.BackendS3,
				Bucket: "data", ObjectKey: fmt.Sprintf("ml/datasets/shard-%05d.tar", i), Method: "GET",
				GrantID: fmt.Sprintf("grant%011d", i), ClientIP: "10.0.0.7", UserAgent: "signet-cli/1.0"}
			if err := db.Update(b.Context(), func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := db.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	b.ReportMetric(float64(st.Updates-before.Updates)/float64(max(1, st.Commits-before.Commits)), "updates/commit")
}
