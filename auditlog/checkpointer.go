package auditlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/signetdev/signet"
)

// DefaultCheckpointInterval is the default of Checkpointer.Interval.
const DefaultCheckpointInterval = time.Minute

// Checkpointer writes a signed checkpoint of the audit log's head into a
// directory at a fixed interval, idle or not. Before it signs, it verifies
// the entries appended since its last checkpoint (at its first, since the
// latest checkpoint in Dir that Key signed, or the whole log) and checks
// that the entry of that checkpoint still has its hash. So it signs only a
// log that continues the one it signed before, and reports, at every
// interval until someone looks, a log that was rewritten, cut short or
// restored from an old backup. After such a failure it reads Dir again,
// so moving aside the checkpoints newer than a deliberately restored
// backup lets it start again from the latest one that matches. A log
// pruned for retention it verifies from the checkpoint the prune was made
// at, which Dir must hold (see AnchorError). Set the fields before
// calling Run or Checkpoint; a Checkpointer is not safe for concurrent
// use.
type Checkpointer struct {
	Store signet.Store
	// Key signs the checkpoints. Keep it outside the database.
	Key ed25519.PrivateKey
	// Dir receives one JSON file per checkpoint (see WriteCheckpoint).
	Dir string
	// Interval is the time between checkpoints: DefaultCheckpointInterval
	// when zero or less.
	Interval time.Duration
	// Logger receives a line per checkpoint and per failure; nil
	// discards them.
	Logger *slog.Logger
	// Now returns the current time; time.Now when nil.
	Now func() time.Time

	last *Checkpoint // the last checkpoint written or found, verified
}

// RunCheckpointer runs a Checkpointer until ctx is done; see Checkpointer
// and Checkpointer.Run.
func RunCheckpointer(ctx context.Context, store signet.Store, key ed25519.PrivateKey, dir string,
	interval time.Duration, logger *slog.Logger) error {
	c := &Checkpointer{Store: store, Key: key, Dir: dir, Interval: interval, Logger: logger}
	return c.Run(ctx)
}

func (c *Checkpointer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Run writes a checkpoint at once and then every Interval until ctx is
// done, when it returns nil. A checkpoint that fails is logged (at Error
// level if the log failed verification, or was pruned at a checkpoint Dir
// lacks) and tried again at the next tick.
func (c *Checkpointer) Run(ctx context.Context) error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("audit checkpointer: no Ed25519 key")
	}
	if c.Dir == "" {
		return errors.New("audit checkpointer: no directory")
	}
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	log := c.logger()
	log.InfoContext(ctx, "audit checkpoints", "dir", c.Dir, "interval", interval,
		"key_id", KeyID(c.Key.Public().(ed25519.PublicKey)))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		cp, path, err := c.Checkpoint(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			var ve *VerifyError
			var ae *AnchorError
			if errors.As(err, &ae) {
				log.ErrorContext(ctx, "audit log cannot be verified without the checkpoint it was pruned at; no checkpoint written",
					"kind", string(MissingAnchor), "first", ae.First, "anchor", ae.First-1, "dir", c.Dir, "err", err)
			} else if errors.As(err, &ve) {
				log.ErrorContext(ctx, "audit log failed verification; no checkpoint written", "seq", ve.Seq, "kind", string(ve.Kind), "err", err)
			} else {
				log.WarnContext(ctx, "audit checkpoint", "err", err)
			}
		default:
			log.DebugContext(ctx, "audit checkpoint", "seq", cp.Seq, "hash", cp.Hash.String(), "file", path)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Checkpoint verifies the log from the last checkpoint to the head and
// writes a signed checkpoint of the head. It returns the checkpoint and
// its path; a *VerifyError if the log is not consistent with the last
// checkpoint, or an *AnchorError if the log was pruned past the
// checkpoints in Dir (and then writes none); or the store's or file
// system's error. After a failure, the next call reads Dir again, so that
// checkpoints moved aside or copied in count from then on.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Checkpoint, string, error) {
	pub := c.Key.Public().(ed25519.PublicKey)
	if c.last == nil {
		cp, _, _, err := LatestCheckpoint(c.Dir, pub)
		if err != nil {
			return nil, "", fmt.Errorf("reading checkpoints: %w", err)
		}
		c.last = cp
	}
	var head signet.AuditHead
	err := c.Store.View(ctx, func(tx signet.Tx) error {
		var err error
		head, err = verifySince(ctx, tx, c.last)
		return err
	})
	if err != nil {
		// What an operator does about a failure is change Dir: move aside
		// the checkpoints newer than a restored backup, or copy in the
		// one a prune was made at. The checkpoint held may be one of
		// those moved, so it is read again. (A healthy run keeps it.)
		c.last = nil
		var ae *AnchorError
		if errors.As(err, &ae) {
			ae.Dir, ae.KeyID = c.Dir, KeyID(pub)
		}
		return nil, "", err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := Sign(c.Key, head, now())
	path, err := WriteCheckpoint(c.Dir, cp)
	if err != nil {
		return nil, "", err
	}
	c.last = cp
	return cp, path, nil
}

// MissingAnchor is the kind of an AnchorError in the checkpointer's log.
// No Verifier reports it: it is not an inconsistency in the log.
const MissingAnchor Kind = "missing anchor"

// AnchorError reports that the log was pruned for retention, as an
// audit.prune entry records, at a checkpoint that the Checkpointer's
// directory does not hold: the log starts at entry First, and Dir has no
// checkpoint of entry First-1 signed by the key (another replica pruned,
// or this one has a fresh directory or was down since before the prune).
// Nothing before First is left to verify, so the Checkpointer signs
// nothing until that checkpoint is copied into Dir; it is then checked
// like any other (signed by the key, with the hash the log's first entry
// links to). Entries deleted without such a record are a *VerifyError
// instead.
type AnchorError struct {
	First int64 // the log's first entry
	// PruneEntry is the audit.prune entry that records pruning up to
	// entry First-1.
	PruneEntry int64
	Dir        string
	KeyID      string      // the key the anchor must be signed with
	Latest     *Checkpoint // the latest checkpoint in Dir; nil if none
}

func (e *AnchorError) Error() string {
	has := "it holds none signed by that key"
	if e.Latest != nil {
		has = fmt.Sprintf("its latest signed by that key is of entry %d", e.Latest.Seq)
	}
	return fmt.Sprintf("%s: the log starts at entry %d after a prune for retention (recorded in entry %d); "+
		"checkpoint directory %s has no checkpoint of entry %d, signed by key %s, that the prune was made at (%s), "+
		"so the log cannot be verified; copy %s%020d-*%s into it from the checkpoint directory of the replica "+
		"that pruned (its audit_checkpoint_dir) or from the audit_checkpoint_export bucket",
		MissingAnchor, e.First, e.PruneEntry, e.Dir, e.First-1, e.KeyID, has,
		checkpointPrefix, e.First-1, checkpointSuffix)
}

// verifySince verifies, in tx, the entry of checkpoint from (if any) and
// every entry after it, and the store's head, which it returns.
func verifySince(ctx context.Context, tx signet.Tx, from *Checkpoint) (signet.AuditHead, error) {
	head, err := tx.AuditHead()
	if err != nil {
		return head, err
	}
	// start returns the log's first entry, or 0 if it is empty.
	start := func() (int64, error) {
		evs, err := tx.Audit(signet.AuditFilter{Limit: 1})
		if err != nil || len(evs) == 0 {
			return 0, err
		}
		return evs[0].Seq, nil
	}
	var anchor signet.AuditHead
	var cps []*Checkpoint
	if from != nil && from.Seq > 0 {
		// Start at the checkpoint's own entry, so that its hash is
		// checked too; it links to whatever precedes it.
		evs, err := tx.Audit(signet.AuditFilter{AfterID: from.Seq - 1, Limit: 1})
		if err != nil {
			return head, err
		}
		if len(evs) == 0 {
			return head, &VerifyError{Seq: from.Seq, Kind: Truncated, Detail: fmt.Sprintf(
				"entry %d, covered by the checkpoint signed at %s, is missing (the store's head is entry %d): "+
					"the log was cut short or restored from an older copy", from.Seq, from.Time.Format(time.RFC3339), head.Seq)}
		}
		if evs[0].Seq != from.Seq {
			// The log may have been pruned at or past the checkpoint
			// (see Retention) if it now starts after it.
			first, err := start()
			if err != nil {
				return head, err
			}
			if first == evs[0].Seq {
				return head, verifyPruned(ctx, tx, first, from, &head)
			}
			return head, &VerifyError{Seq: from.Seq, Kind: Gap, Detail: fmt.Sprintf(
				"entry %d, covered by the checkpoint signed at %s, is missing: the next is entry %d",
				from.Seq, from.Time.Format(time.RFC3339), evs[0].Seq)}
		}
		anchor = signet.AuditHead{Seq: from.Seq - 1, Hash: evs[0].PrevHash}
		cps = []*Checkpoint{from}
	} else {
		// The first run, with no checkpoint in Dir (or one of the empty
		// log): the log may have been pruned.
		first, err := start()
		if err != nil {
			return head, err
		}
		if first > 1 {
			return head, verifyPruned(ctx, tx, first, from, &head)
		}
	}
	v := NewVerifier(anchor, cps...)
	if err := verifyPages(ctx, tx, v, anchor.Seq); err != nil {
		return head, err
	}
	return head, v.Finish(&head)
}

// verifyPruned verifies, in tx, a log that starts at entry first > 1, as
// retention leaves it, when the last checkpoint from (nil if none, or of
// the empty log) is before first. From a checkpoint of entry first-1 the log is verified as
// `signet audit verify` does: entry first must link to its hash, and an
// audit.prune entry must record pruning up to it. Without one, it
// returns an *AnchorError if such a record exists (another replica
// pruned), and reports missing entries otherwise.
func verifyPruned(ctx context.Context, tx signet.Tx, first int64, from *Checkpoint, head *signet.AuditHead) error {
	if from != nil && from.Seq == first-1 {
		v := NewVerifier(signet.AuditHead{}, from)
		if err := verifyPages(ctx, tx, v, 0); err != nil {
			return err
		}
		return v.Finish(head)
	}
	record, err := pruneRecord(tx, first-1)
	if err != nil {
		return err
	}
	switch {
	case record != nil:
		return &AnchorError{First: first, PruneEntry: record.Seq, Latest: from}
	case from != nil && from.Seq > 0:
		return &VerifyError{Seq: from.Seq, Kind: Gap, Detail: fmt.Sprintf(
			"entry %d, covered by the checkpoint signed at %s, is missing: the log starts at entry %d, "+
				"and no %s entry records pruning up to entry %d", from.Seq, from.Time.Format(time.RFC3339),
			first, signet.ActionAuditPrune, first-1)}
	}
	// The Verifier reports the start as unanchored.
	v := NewVerifier(signet.AuditHead{})
	if err := verifyPages(ctx, tx, v, 0); err != nil {
		return err
	}
	return v.Finish(head)
}

// pruneRecord returns the audit.prune entry in tx that records pruning up
// to entry through, or nil.
func pruneRecord(tx signet.Tx, through int64) (*signet.AuditEvent, error) {
	f := signet.AuditFilter{Action: signet.ActionAuditPrune, Limit: signet.MaxAuditPage}
	for {
		evs, err := tx.Audit(f)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if _, t, ok := parsePruneTarget(e.Target); ok && t == through {
				return e, nil
			}
		}
		if len(evs) < f.Limit {
			return nil, nil
		}
		f.AfterID = evs[len(evs)-1].ID
	}
}
