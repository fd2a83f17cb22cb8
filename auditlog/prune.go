package auditlog

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
)

// Retention. The oldest entries of the log may be deleted once they are
// older than a retention age, but only up to an entry that a signed
// checkpoint covers, and exactly to it: the log then starts at entry N
// whose PrevHash is the hash of checkpoint N-1, and a verifier given that
// checkpoint anchors the log there (see Verifier). Each prune appends an
// audit.prune entry in the transaction that deletes, naming the range and
// the checkpoint; the verifier also requires that entry.

// Pruner is implemented by the transactions of the stores whose audit log
// can be pruned (sqlite, postgres). It is kept out of signet.Tx because
// only retention may call it.
type Pruner interface {
	// PruneAudit deletes the audit events with Seq at or below through,
	// and returns how many it deleted; the head stays as it is. It takes
	// no lock beyond the rows it deletes: a concurrent prune of the same
	// rows waits for this one and then deletes fewer, which Retention
	// detects. PermissionDenied if the database role may not delete from
	// the log.
	PruneAudit(through int64) (int64, error)
}

// UsagePruner is implemented by the transactions of the stores that keep
// usage events (sqlite, postgres). Like Pruner it is kept out of
// signet.Tx and signet.UsageTx because only retention may call it.
type UsagePruner interface {
	// PruneOrphanUsage deletes the usage events served before before
	// whose grant id no audit event still in the log carries, and returns
	// how many it deleted. PermissionDenied if the database role may not
	// delete usage events.
	PruneOrphanUsage(before time.Time) (int64, error)
}

// DefaultRetentionInterval is the default of Retention.Interval.
const DefaultRetentionInterval = time.Hour

// DefaultPruneBatch is the default of Retention.Batch.
const DefaultPruneBatch = 10000

// Retention prunes the audit log of a Store: entries older than MaxAge,
// up to the latest checkpoint in Dir, signed by the key of Pub, that
// covers only such entries. Set the fields before calling Prune or Run.
type Retention struct {
	Store signet.Store
	// MaxAge is the retention age: an entry is old when its Time is
	// before now minus MaxAge. It must be positive.
	MaxAge time.Duration
	// Dir holds the signed checkpoints (the Checkpointer's directory), Pub
	// the public key that verifies them.
	Dir string
	Pub ed25519.PublicKey
	// Actor is recorded as the ActorUser of the audit.prune entries.
	Actor string
	// Interval is the time between prunes in Run;
	// DefaultRetentionInterval when zero or less.
	Interval time.Duration
	// Batch bounds the entries one transaction deletes, when the
	// checkpoints allow it (a checkpoint is at most Batch entries past the
	// start, or the first one is past it): DefaultPruneBatch when zero or
	// less.
	Batch int64
	// Logger receives a line per prune and per failure; nil discards.
	Logger *slog.Logger
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Pruned describes one prune: the entries From to Through were deleted,
// relying on Checkpoint (at Through), and Event records it in the log.
type Pruned struct {
	From, Through int64
	Checkpoint    *Checkpoint
	Event         *signet.AuditEvent
}

// ErrPruneRace reports that the log changed between the check and the
// delete of a prune (another prune ran, or the log was changed outside
// signet); nothing was deleted.
var ErrPruneRace = errors.New("audit log changed while pruning; nothing was pruned")

func (r *Retention) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Prune deletes old entries covered by a checkpoint, in one or more
// transactions (see Batch), and returns what it pruned. When nothing could
// be pruned, wait says why (nothing old, or no checkpoint covers the old
// entries yet). A *VerifyError means the entries it would delete are not
// intact or do not match the checkpoint: it then deletes nothing, keeping
// the evidence.
func (r *Retention) Prune(ctx context.Context) (pruned []Pruned, wait string, err error) {
	if r.MaxAge <= 0 {
		return nil, "", errors.New("audit retention: the retention age must be positive")
	}
	if len(r.Pub) != ed25519.PublicKeySize {
		return nil, "", errors.New("audit retention: no checkpoint public key")
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	run := &pruneRun{cutoff: now().Add(-r.MaxAge)}
	if run.index, err = indexCheckpoints(r.Dir); err != nil {
		return nil, "", fmt.Errorf("reading checkpoints: %w", err)
	}
	for {
		p, w, err := r.step(ctx, run)
		if err == nil && p == nil {
			err = r.pruneUsage(ctx, run.cutoff)
		}
		if err != nil || p == nil {
			return pruned, w, err
		}
		pruned = append(pruned, *p)
		r.logger().InfoContext(ctx, "audit log pruned", "from", p.From, "through", p.Through,
			"checkpoint_seq", p.Checkpoint.Seq, "checkpoint_time", p.Checkpoint.Time, "prune_entry", p.Event.Seq)
	}
}

// pruneUsage deletes the usage events (signet.UsageTx) served before
// cutoff whose grants are no longer in the log, and records how many in
// an audit entry of the same transaction. They are not part of the chain,
// so no checkpoint is needed; they hold client addresses, so they go with
// the audit log's age, but not before the entries that issued their
// grants: a prune keeps old entries that no checkpoint covers yet, and
// `signet audit usage` must still show those grants' uses.
//
// The bound is the grant, not a time. A time bound (the issue time of the
// first entry left) would compare the store's clock, which dates usage
// events (MinIO's, S3's), with signet's, which dates audit entries: a
// store whose clock is behind would lose uses of kept grants, by however
// much it is behind, and no margin is sure to be enough; nor do times in
// the log grow with seq (replicas' clocks differ too). Asking whether the
// log still holds the grant is exact, and cheap on both stores: the usage
// events older than the cut-off are found by their index on occurred_at,
// and each costs a probe of the audit log's index on grant_id (PostgreSQL
// hashes the log's grant ids instead when many events are old). The
// events kept, looked at again at the next prune, are only those of old
// entries that no checkpoint covers yet.
func (r *Retention) pruneUsage(ctx context.Context, cutoff time.Time) error {
	var n int64
	err := r.Store.Update(ctx, func(tx signet.Tx) error {
		// A store without UsagePruner keeps no usage events (or cannot
		// tell which belong to pruned grants): nothing is deleted.
		u, ok := tx.(UsagePruner)
		if !ok {
			return nil
		}
		var err error
		if n, err = u.PruneOrphanUsage(cutoff); err != nil || n == 0 {
			return err
		}
		return tx.AppendAudit(&signet.AuditEvent{
			ActorUser: r.Actor,
			Action:    signet.ActionUsagePrune,
			Outcome:   signet.OutcomeAllowed,
			Reason: fmt.Sprintf("retention %s: %d usage events served before %s, of grants no longer in the audit log, deleted",
				r.MaxAge, n, cutoff.UTC().Format(time.RFC3339)),
		})
	})
	if err == nil && n > 0 {
		r.logger().InfoContext(ctx, "usage events pruned", "count", n, "before", cutoff)
	}
	return err
}

// pruneRun is what the steps of one Prune share: the cut-off time, the
// last entry of the old part of the log (found at the first step; entries
// appended later are young), and the checkpoint files by Seq.
type pruneRun struct {
	cutoff     time.Time
	oldThrough int64
	index      []checkpointFile
}

// step prunes once: from the first entry to the checkpoint chosen.
func (r *Retention) step(ctx context.Context, run *pruneRun) (*Pruned, string, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	cutoff := run.cutoff
	var first *signet.AuditEvent
	var cp *Checkpoint
	wait := ""
	err := r.Store.View(ctx, func(tx signet.Tx) error {
		evs, err := tx.Audit(signet.AuditFilter{Limit: 1})
		if err != nil || len(evs) == 0 {
			wait = "the audit log is empty"
			return err
		}
		first = evs[0]
		if run.oldThrough == 0 {
			// The first entry, in log order, that is not old: every
			// entry before it is. (Times need not grow with Seq.)
			young, err := tx.Audit(signet.AuditFilter{AfterID: first.Seq - 1, Since: cutoff, Limit: 1})
			if err != nil {
				return err
			}
			if len(young) > 0 {
				run.oldThrough = young[0].Seq - 1
			} else {
				head, err := tx.AuditHead()
				if err != nil {
					return err
				}
				run.oldThrough = head.Seq
			}
		}
		oldThrough := run.oldThrough
		if oldThrough < first.Seq {
			wait = fmt.Sprintf("no entry is older than %s (the oldest is entry %d, of %s)",
				r.MaxAge, first.Seq, first.Time.Format(time.RFC3339))
			return nil
		}
		// The last checkpoint within a batch of the start, or else the
		// first one; a file that does not verify is passed over.
		for cp == nil {
			c, k := run.pick(first.Seq, oldThrough, batch)
			if k < 0 {
				wait = fmt.Sprintf("entries %d to %d are older than %s, but no checkpoint in %s signed by key %s covers any of them yet",
					first.Seq, oldThrough, r.MaxAge, r.Dir, KeyID(r.Pub))
				return nil
			}
			if got, err := ReadCheckpoint(filepath.Join(r.Dir, c.name)); err == nil && got.Seq == c.seq && got.Verify(r.Pub) == nil {
				cp = got
			} else {
				run.index = slices.Delete(run.index, k, k+1)
			}
		}
		return r.verifyRange(ctx, tx, run, first, cp)
	})
	if err != nil || cp == nil {
		return nil, wait, err
	}
	ev := &signet.AuditEvent{
		ActorUser: r.Actor,
		Action:    signet.ActionAuditPrune,
		Outcome:   signet.OutcomeAllowed,
		Target:    PruneTarget(first.Seq, cp.Seq),
		Reason: fmt.Sprintf("retention %s: entries %d to %d, all older than %s, pruned at checkpoint %d (hash %s, signed %s by key %s)",
			r.MaxAge, first.Seq, cp.Seq, cutoff.UTC().Format(time.RFC3339), cp.Seq, cp.Hash,
			cp.Time.Format(time.RFC3339Nano), cp.KeyID),
	}
	err = r.Store.Update(ctx, func(tx signet.Tx) error {
		p, ok := tx.(Pruner)
		if !ok {
			return signet.E("auditlog.Prune", signet.Unimplemented, "this store cannot prune its audit log", nil)
		}
		n, err := p.PruneAudit(cp.Seq)
		if err != nil {
			return err
		}
		if n != cp.Seq-first.Seq+1 {
			return fmt.Errorf("%w (deleted %d entries up to %d, expected %d from entry %d)", ErrPruneRace, n, cp.Seq, cp.Seq-first.Seq+1, first.Seq)
		}
		// What remains must continue from the checkpoint.
		next, err := tx.Audit(signet.AuditFilter{AfterID: cp.Seq, Limit: 1})
		if err != nil {
			return err
		}
		if len(next) > 0 {
			if next[0].Seq != cp.Seq+1 || next[0].PrevHash != cp.Hash {
				return fmt.Errorf("%w (entry %d does not continue the checkpoint of entry %d)", ErrPruneRace, next[0].Seq, cp.Seq)
			}
		} else {
			head, err := tx.AuditHead()
			if err != nil {
				return err
			}
			if head.Seq != cp.Seq || head.Hash != cp.Hash {
				return fmt.Errorf("%w (the head, entry %d, is not the checkpoint's entry %d)", ErrPruneRace, head.Seq, cp.Seq)
			}
		}
		return tx.AppendAudit(ev)
	})
	if err != nil {
		return nil, "", err
	}
	return &Pruned{From: first.Seq, Through: cp.Seq, Checkpoint: cp, Event: ev}, "", nil
}

// verifyRange verifies, in tx, the entries from first to the checkpoint's
// entry: they must form a chain that cp's hash ends. The link of first to
// what precedes it is checked when a checkpoint of that entry is in Dir,
// and for the first entry of a log.
func (r *Retention) verifyRange(ctx context.Context, tx signet.Tx, run *pruneRun, first *signet.AuditEvent, cp *Checkpoint) error {
	anchor := signet.AuditHead{Seq: first.Seq - 1, Hash: first.PrevHash}
	if first.Seq == 1 {
		anchor.Hash = signet.AuditHash{}
	}
	for _, f := range run.index {
		if f.seq != first.Seq-1 || first.Seq == 1 {
			continue
		}
		if prev, err := ReadCheckpoint(filepath.Join(r.Dir, f.name)); err == nil && prev.Seq == f.seq && prev.Verify(r.Pub) == nil {
			anchor.Hash = prev.Hash
		}
	}
	v := NewVerifier(anchor, cp)
	f := signet.AuditFilter{AfterID: anchor.Seq, Limit: pageSize}
	for {
		evs, err := tx.Audit(f)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Seq > cp.Seq {
				break
			}
			if err := v.Add(e); err != nil {
				return err
			}
		}
		if len(evs) < pageSize || evs[len(evs)-1].Seq >= cp.Seq {
			break
		}
		f.AfterID = evs[len(evs)-1].ID
	}
	if v.pending != nil {
		return v.pending
	}
	if h := v.Head(); h.Seq != cp.Seq {
		return &VerifyError{Seq: h.Seq + 1, Kind: Truncated, Detail: fmt.Sprintf(
			"the log ends at entry %d, before the checkpoint's entry %d", h.Seq, cp.Seq)}
	}
	return nil
}

// PruneTarget is the Target of an audit.prune entry: the range of Seqs
// pruned, "FROM-THROUGH".
func PruneTarget(from, through int64) string { return fmt.Sprintf("%d-%d", from, through) }

// parsePruneTarget parses what PruneTarget writes.
func parsePruneTarget(s string) (from, through int64, ok bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	from, err1 := strconv.ParseInt(a, 10, 64)
	through, err2 := strconv.ParseInt(b, 10, 64)
	return from, through, err1 == nil && err2 == nil && from >= 1 && from <= through
}

// Run prunes at once and then every Interval until ctx is done, when it
// returns nil. It returns the error, after logging it, when the store
// refuses to delete (PermissionDenied: on PostgreSQL, signet serves as a
// role that may only append to the log; run `signet audit prune` as the
// owner) or cannot prune (Unimplemented); other failures are logged and
// tried again at the next tick.
func (r *Retention) Run(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	log := r.logger()
	log.InfoContext(ctx, "audit retention", "max_age", r.MaxAge, "checkpoint_dir", r.Dir, "interval", interval)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		_, wait, err := r.Prune(ctx)
		var ve *VerifyError
		switch code := signet.ErrorCode(err); {
		case ctx.Err() != nil:
			return nil
		case code == signet.PermissionDenied || code == signet.Unimplemented:
			log.ErrorContext(ctx, "audit retention stopped: the store refuses to delete from the audit log; "+
				"prune as the owner of signet's tables with `signet audit prune --db URL --older-than AGE`", "err", err)
			return err
		case errors.As(err, &ve):
			log.ErrorContext(ctx, "audit log failed verification; nothing pruned", "seq", ve.Seq, "kind", string(ve.Kind), "err", err)
		case err != nil:
			log.WarnContext(ctx, "audit retention", "err", err)
		case wait != "":
			log.DebugContext(ctx, "audit retention: nothing to prune", "why", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// checkpointFile is a checkpoint file's name and the Seq in it.
type checkpointFile struct {
	seq  int64
	name string
}

// indexCheckpoints lists the checkpoint files of dir by Seq, then time
// (their names sort so), unread. A missing dir has none.
func indexCheckpoints(dir string) ([]checkpointFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []checkpointFile
	for _, e := range entries {
		if seq, ok := checkpointFileSeq(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, checkpointFile{seq, e.Name()})
		}
	}
	slices.SortFunc(files, func(a, b checkpointFile) int { return strings.Compare(a.name, b.name) })
	return files, nil
}

// pick returns the file of the last checkpoint with a Seq from first to
// through that is less than batch entries past first, or else of the
// first one from first on, and its index; -1 if there is none.
func (run *pruneRun) pick(first, through, batch int64) (checkpointFile, int) {
	lo, _ := slices.BinarySearchFunc(run.index, first, func(f checkpointFile, seq int64) int { return cmp.Compare(f.seq, seq) })
	hi, _ := slices.BinarySearchFunc(run.index, through+1, func(f checkpointFile, seq int64) int { return cmp.Compare(f.seq, seq) })
	if lo >= hi {
		return checkpointFile{}, -1
	}
	k := lo
	for i := lo; i < hi && run.index[i].seq-first < batch; i++ {
		k = i
	}
	return run.index[k], k
}

// CheckpointsBetween returns the checkpoints in dir signed by pub whose Seq
// is between from and to (inclusive), ordered by Seq, then Time. It reads
// only the files whose names fall in the range, and skips those whose
// content does not match their name, or that do not verify. A missing dir
// holds none.
func CheckpointsBetween(dir string, pub ed25519.PublicKey, from, to int64) ([]*Checkpoint, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cps []*Checkpoint
	for _, e := range entries {
		seq, ok := checkpointFileSeq(e.Name())
		if !ok || !e.Type().IsRegular() || seq < from || seq > to {
			continue
		}
		cp, err := ReadCheckpoint(filepath.Join(dir, e.Name()))
		if err != nil || cp.Seq != seq || cp.Verify(pub) != nil {
			continue
		}
		cps = append(cps, cp)
	}
	slices.SortFunc(cps, func(a, b *Checkpoint) int {
		if a.Seq != b.Seq {
			return int(min(max(a.Seq-b.Seq, -1), 1))
		}
		return a.Time.Compare(b.Time)
	})
	return cps, nil
}

// checkpointFileSeq returns the Seq in a checkpoint file's name.
func checkpointFileSeq(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || !strings.HasSuffix(name, checkpointSuffix) || len(rest) < 21 || rest[20] != '-' {
		return 0, false
	}
	seq, err := strconv.ParseInt(rest[:20], 10, 64)
	return seq, err == nil
}
