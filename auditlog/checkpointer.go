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
// backup lets it start again from the latest one that matches. Set the
// fields before calling Run or Checkpoint; a Checkpointer is not safe for
// concurrent use.
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
// level if the log failed verification) and tried again at the next tick.
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
			if errors.As(err, &ve) {
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
// checkpoint (and then writes none); or the store's or file system's
// error. After a failure, the next call reads Dir again, so that
// checkpoints moved aside count from then on.
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
		// the checkpoints newer than a restored backup. The checkpoint
		// held may be one of those moved, so it is read again. (A healthy
		// run keeps it.)
		c.last = nil
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

// verifySince verifies, in tx, the entry of checkpoint from (if any) and
// every entry after it, and the store's head, which it returns.
func verifySince(ctx context.Context, tx signet.Tx, from *Checkpoint) (signet.AuditHead, error) {
	head, err := tx.AuditHead()
	if err != nil {
		return head, err
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
		if evs[0].Seq == from.Seq+1 && evs[0].PrevHash == from.Hash {
			// The log was pruned exactly at the checkpoint (see
			// Retention) if it now starts there.
			firsts, err := tx.Audit(signet.AuditFilter{Limit: 1})
			if err != nil {
				return head, err
			}
			if firsts[0].Seq == evs[0].Seq {
				v := NewVerifier(from.Head())
				if err := verifyPages(ctx, tx, v, from.Seq); err != nil {
					return head, err
				}
				return head, v.Finish(&head)
			}
		}
		if evs[0].Seq != from.Seq {
			return head, &VerifyError{Seq: from.Seq, Kind: Gap, Detail: fmt.Sprintf(
				"entry %d, covered by the checkpoint signed at %s, is missing: the next is entry %d",
				from.Seq, from.Time.Format(time.RFC3339), evs[0].Seq)}
		}
		anchor = signet.AuditHead{Seq: from.Seq - 1, Hash: evs[0].PrevHash}
		cps = []*Checkpoint{from}
	}
	v := NewVerifier(anchor, cps...)
	if err := verifyPages(ctx, tx, v, anchor.Seq); err != nil {
		return head, err
	}
	return head, v.Finish(&head)
}
