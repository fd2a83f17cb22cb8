package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// chainTests check that the audit log a store keeps is one hash chain:
// Seq from 1 without gaps, each PrevHash the Hash before, each Hash the
// digest of its event, the head recorded, whatever rolls back and however
// many write at once.
var chainTests = []test{
	{"OK", testChainOK},
	{"Empty", testChainEmpty},
	{"Rollback", testChainRollback},
	{"RollbackInTx", testChainRollbackInTx},
	{"Concurrent", testChainConcurrent},
	{"Bytes", testChainBytes},
	{"Export", testChainExport},
}

// checkChain checks that evs, read back in order, form a chain from the
// start of the log.
func checkChain(t *testing.T, evs []*signet.AuditEvent) {
	t.Helper()
	var prev signet.AuditHash
	for i, e := range evs {
		if want := int64(i + 1); e.Seq != want || e.ID != want {
			t.Errorf("event %d: Seq %d, ID %d; want both %d", i, e.Seq, e.ID, want)
			return
		}
		if e.PrevHash != prev {
			t.Errorf("event %d: PrevHash %s, want %s", e.Seq, e.PrevHash, prev)
			return
		}
		if h := auditlog.Hash(e); e.Hash != h {
			t.Errorf("event %d: Hash %s, want %s", e.Seq, e.Hash, h)
			return
		}
		prev = e.Hash
	}
}

func auditHead(t *testing.T, s signet.Store) signet.AuditHead {
	t.Helper()
	var h signet.AuditHead
	mustView(t, s, func(tx signet.Tx) (err error) {
		h, err = tx.AuditHead()
		return err
	})
	return h
}

// verify runs auditlog.VerifyStore and checks that it finds want entries
// and no fault.
func verify(t *testing.T, s signet.Store, want int) {
	t.Helper()
	res, err := auditlog.VerifyStore(t.Context(), s, signet.AuditHead{})
	if err != nil {
		t.Errorf("VerifyStore: %v", err)
	}
	if res.Entries != int64(want) {
		t.Errorf("VerifyStore verified %d entries, want %d", res.Entries, want)
	}
}

func testChainOK(t *testing.T, s signet.Store) {
	first := []*signet.AuditEvent{fullEvent(1), fullEvent(2)}
	appendEvents(t, s, first...)
	if first[0].Seq != 1 || first[1].Seq != 2 || first[0].PrevHash != (signet.AuditHash{}) || first[1].PrevHash != first[0].Hash {
		t.Errorf("first append: Seq %d, %d; want 1, 2 linked from zero", first[0].Seq, first[1].Seq)
	}
	second := []*signet.AuditEvent{fullEvent(3), {Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}, fullEvent(5)}
	appendEvents(t, s, second...)
	if second[0].PrevHash != first[1].Hash {
		t.Errorf("second append links to %s, want the first's last hash %s", second[0].PrevHash, first[1].Hash)
	}
	all := append(first, second...)
	got := auditAll(t, s, signet.AuditFilter{}, 2)
	if len(got) != len(all) {
		t.Fatalf("Audit = %d events, want %d", len(got), len(all))
	}
	for i := range got {
		checkEvent(t, got[i], all[i]) // the chain fields too
	}
	checkChain(t, got)
	last := all[len(all)-1]
	if h := auditHead(t, s); h != (signet.AuditHead{Seq: last.Seq, Hash: last.Hash}) {
		t.Errorf("AuditHead = %+v, want seq %d hash %s", h, last.Seq, last.Hash)
	}
	verify(t, s, len(all))
}

func testChainEmpty(t *testing.T, s signet.Store) {
	if h := auditHead(t, s); h != (signet.AuditHead{}) {
		t.Errorf("AuditHead of an empty log = %+v, want zero", h)
	}
	verify(t, s, 0)
}

// testChainRollback: a rolled-back append leaves neither a gap nor a fork.
func testChainRollback(t *testing.T, s signet.Store) {
	first := fullEvent(1)
	appendEvents(t, s, first)
	boom := errors.New("boom")
	err := update(t, s, func(tx signet.Tx) error {
		if err := tx.AppendAudit(fullEvent(2), fullEvent(3)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	next := fullEvent(4)
	appendEvents(t, s, next)
	if next.Seq != 2 || next.PrevHash != first.Hash {
		t.Errorf("append after a rollback: Seq %d, PrevHash %s; want 2 linked to %s", next.Seq, next.PrevHash, first.Hash)
	}
	checkChain(t, audit(t, s, signet.AuditFilter{}))
	verify(t, s, 2)
}

// testChainRollbackInTx: appends in one transaction chain onto each other,
// and an invalid event refuses its whole call and nothing else.
func testChainRollbackInTx(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error {
		if err := tx.AppendAudit(fullEvent(1)); err != nil {
			return err
		}
		err := tx.AppendAudit(fullEvent(2), &signet.AuditEvent{Action: signet.ActionTeamCreate})
		wantCode(t, "AppendAudit with an invalid event", err, signet.Invalid)
		return tx.AppendAudit(fullEvent(3), fullEvent(4))
	})
	got := audit(t, s, signet.AuditFilter{})
	checkChain(t, got)
	if len(got) != 3 {
		t.Errorf("Audit = %d events, want 3", len(got))
	}
	verify(t, s, 3)
}

// testChainConcurrent: many writers, some of which roll back, make one
// chain.
func testChainConcurrent(t *testing.T, s signet.Store) {
	const workers, each = 8, 25
	boom := errors.New("boom")
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := 0
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := 1 + (w+i)%3
				err := s.Update(t.Context(), func(tx signet.Tx) error {
					evs := make([]*signet.AuditEvent, n)
					for j := range evs {
						evs[j] = &signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
							RequestID: fmt.Sprintf("w%d-%d-%d", w, i, j)}
					}
					if err := tx.AppendAudit(evs...); err != nil {
						return err
					}
					if i%5 == 0 {
						return boom
					}
					return nil
				})
				switch {
				case i%5 == 0 && !errors.Is(err, boom), i%5 != 0 && err != nil:
					t.Errorf("Update %d/%d: %v", w, i, err)
				case err == nil:
					mu.Lock()
					committed += n
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	got := auditAll(t, s, signet.AuditFilter{}, 1000)
	if len(got) != committed {
		t.Errorf("Audit = %d events, want the %d committed", len(got), committed)
	}
	checkChain(t, got)
	verify(t, s, committed)
}

// oddEvent holds bytes that JSON strings cannot carry and PostgreSQL text
// cannot hold: the chain covers them exactly.
func oddEvent() *signet.AuditEvent {
	e := fullEvent(7)
	e.ObjectKey = "ml/\xff\x00bad\\x00"
	e.UserAgent = "agent/1 \xe2\x82" // cut inside a rune
	e.Team = `back\slash`
	e.Reason = "line\nbreak\u2028and \"quotes\""
	return e
}

func testChainBytes(t *testing.T, s signet.Store) {
	in := []*signet.AuditEvent{fullEvent(1), oddEvent(), fullEvent(3)}
	appendEvents(t, s, in...)
	got := audit(t, s, signet.AuditFilter{})
	if len(got) != len(in) {
		t.Fatalf("Audit = %d events, want %d", len(got), len(in))
	}
	for i := range got {
		checkEvent(t, got[i], in[i])
	}
	checkChain(t, got)
	verify(t, s, len(in))
}

// testChainExport: the log written as JSON lines, as the export does,
// verifies, odd bytes included.
func testChainExport(t *testing.T, s signet.Store) {
	appendEvents(t, s, fullEvent(1), oddEvent(), fullEvent(3))
	appendEvents(t, s, &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range auditAll(t, s, signet.AuditFilter{}, 1000) {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	res, err := auditlog.VerifyJSONLines(&buf, signet.AuditHead{})
	if err != nil || res.Entries != 4 {
		t.Errorf("VerifyJSONLines = %d entries, %v; want 4, nil", res.Entries, err)
	}
	if res.Head != auditHead(t, s) {
		t.Errorf("export ends at %+v, want the store's head %+v", res.Head, auditHead(t, s))
	}
}
