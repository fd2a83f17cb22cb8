package auditlog_test

import (
	"slices"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// prunedLog returns a log of 20 entries whose entry 12 records pruning
// entries 1 to 8, and the lines of what is left of it, entries 9 to 20,
// with checkpoints of entries 8 (where it was pruned) and 20.
func prunedLog(t *testing.T) (evs []*signet.AuditEvent, lines []string, cp8, cp20 *auditlog.Checkpoint) {
	t.Helper()
	evs = chain(20)
	evs[11].Action = signet.ActionAuditPrune
	evs[11].Target = auditlog.PruneTarget(1, 8)
	rechain(evs, 11)
	key := mustKey(t)
	cp8 = auditlog.Sign(key, signet.AuditHead{Seq: 8, Hash: evs[7].Hash}, base.Add(time.Minute))
	cp20 = auditlog.Sign(key, signet.AuditHead{Seq: 20, Hash: evs[19].Hash}, base.Add(2*time.Minute))
	return evs, jsonLines(t, evs[8:]), cp8, cp20
}

// TestVerifyPruned: a log pruned for retention verifies from its start
// only with the checkpoint it was pruned at and with the record of the
// prune, and every mutation of what is left is still found.
func TestVerifyPruned(t *testing.T) {
	evs, lines, cp8, cp20 := prunedLog(t)
	n := len(lines)

	t.Run("Anchored", func(t *testing.T) {
		res, err := verifyLines(lines, signet.AuditHead{}, cp8, cp20)
		if err != nil || res.Entries != int64(n) || res.PrunedThrough != 8 || res.Checkpoints != 2 || res.Head.Seq != 20 {
			t.Errorf("pruned log with its checkpoints: %+v, %v", res, err)
		}
		if res, err := verifyLines(lines, signet.AuditHead{}, cp8); err != nil || res.PrunedThrough != 8 {
			t.Errorf("pruned log with the anchoring checkpoint: %+v, %v", res, err)
		}
	})
	t.Run("NoCheckpoint", func(t *testing.T) {
		_, err := verifyLines(lines, signet.AuditHead{})
		wantFault(t, err, auditlog.Unanchored, 1, 1)
		_, err = verifyLines(lines, signet.AuditHead{}, cp20)
		wantFault(t, err, auditlog.Unanchored, 1, 1)
	})
	t.Run("NotAtCheckpoint", func(t *testing.T) {
		// Cut one entry further than the checkpoint.
		_, err := verifyLines(lines[1:], signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Unanchored, 1, 1)
	})
	t.Run("ForeignCheckpoint", func(t *testing.T) {
		other := auditlog.Sign(mustKey(t), signet.AuditHead{Seq: 8, Hash: evs[6].Hash}, base)
		_, err := verifyLines(lines, signet.AuditHead{}, other)
		wantFault(t, err, auditlog.CheckpointMismatch, 9, 1)
	})
	t.Run("NoPruneEntry", func(t *testing.T) {
		// Deleted by hand, at a checkpoint: no record of it.
		e := clone(evs)
		e[11].Action, e[11].Target = signet.ActionPresignDownload, ""
		rechain(e, 11)
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8)
		wantFault(t, err, auditlog.Unanchored, 9, 0)
	})
	t.Run("PruneEntryOtherRange", func(t *testing.T) {
		e := clone(evs)
		e[11].Target = auditlog.PruneTarget(1, 7)
		rechain(e, 11)
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8)
		wantFault(t, err, auditlog.Unanchored, 9, 0)
	})
	t.Run("EditField", func(t *testing.T) {
		e := clone(evs)
		e[14].Reason = "changed"
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.HashMismatch, 15, 7)
	})
	t.Run("EditFirst", func(t *testing.T) {
		e := clone(evs)
		e[8].Reason = "changed"
		e[8].Hash = auditlog.Hash(e[8])
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.BrokenLink, 10, 2)
	})
	t.Run("RewriteFromFirst", func(t *testing.T) {
		e := clone(evs)
		e[8].Outcome = signet.OutcomeDenied
		rechain(e, 8)
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.CheckpointMismatch, 20, n)
	})
	t.Run("Delete", func(t *testing.T) {
		_, err := verifyLines(slices.Delete(slices.Clone(lines), 4, 5), signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Gap, 13, 5)
	})
	t.Run("DeleteFirst", func(t *testing.T) {
		_, err := verifyLines(lines[1:], signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Unanchored, 1, 1)
	})
	t.Run("Insert", func(t *testing.T) {
		forged := event(13)
		auditlog.Chain(evs[11].Hash, forged)
		l := slices.Insert(slices.Clone(lines), 4, jsonLines(t, []*signet.AuditEvent{forged})[0])
		_, err := verifyLines(l, signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Duplicate, 13, 6)
	})
	t.Run("Reorder", func(t *testing.T) {
		l := slices.Clone(lines)
		l[5], l[6] = l[6], l[5]
		_, err := verifyLines(l, signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.OutOfOrder, 15, 6)
	})
	t.Run("Truncate", func(t *testing.T) {
		_, err := verifyLines(lines[:n-2], signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Truncated, 19, 0)
	})
	t.Run("TruncateAll", func(t *testing.T) {
		_, err := verifyLines(nil, signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.Truncated, 1, 0)
	})
	t.Run("RestoreOldBackup", func(t *testing.T) {
		// A copy of entries 9 to 15, restored and written on.
		e := clone(evs[:15])
		for i := int64(16); i <= 20; i++ {
			x := event(i)
			x.RequestID = "after-restore"
			e = append(e, x)
		}
		rechain(e, 15)
		_, err := verifyLines(jsonLines(t, e[8:]), signet.AuditHead{}, cp8, cp20)
		wantFault(t, err, auditlog.CheckpointMismatch, 20, n)
	})
	t.Run("AfterAnchor", func(t *testing.T) {
		// An export made with --cursor is anchored by --after, not by a
		// checkpoint: nothing changes for it.
		res, err := verifyLines(lines[3:], signet.AuditHead{Seq: 11, Hash: evs[10].Hash}, cp20)
		if err != nil || res.PrunedThrough != 0 || res.Entries != int64(n-3) {
			t.Errorf("anchored export of a pruned log: %+v, %v", res, err)
		}
	})
}
