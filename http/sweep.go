package http

import (
	"context"
	"errors"
	"time"

	"github.com/signetdev/signet"
)

// sweepBatch is how many expired sessions one pass of the sweeper reads at
// a time.
const sweepBatch = 100

// Sweep aborts, at their store, the chunked uploads whose session deadline
// has passed, marks them aborted and audits each (action upload.expire,
// actor "signet"). It returns how many sessions it collected. Sessions it
// cannot abort at the store (store down) stay active and are retried on
// the next sweep.
func (s *Server) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	swept := 0
	var retry map[string]bool
	for {
		var us []*signet.Upload
		err := s.store.View(ctx, func(tx signet.Tx) (err error) {
			us, err = tx.ExpiredUploads(now, sweepBatch+len(retry))
			return err
		})
		if err != nil {
			return swept, err
		}
		progressed := false
		for _, u := range us {
			if retry[u.ID] {
				continue
			}
			err := s.expire(ctx, u)
			if errors.Is(err, errEnded) {
				continue
			}
			if err != nil {
				s.logger.WarnContext(ctx, "expiring upload session", "team", u.Team, "upload_id", u.ID, "err", err)
				if retry == nil {
					retry = map[string]bool{}
				}
				retry[u.ID] = true
				continue
			}
			swept++
			progressed = true
		}
		if !progressed || len(us) < sweepBatch {
			return swept, nil
		}
	}
}

// expire discards one session at its store and records it.
func (s *Server) expire(ctx context.Context, u *signet.Upload) error {
	ev := &signet.AuditEvent{
		Time: s.now(), ActorUser: "signet", Team: u.Team, Action: signet.ActionUploadExpire,
		Store: u.Backend, Bucket: u.Bucket, ObjectKey: u.StoreKey, UploadID: u.ID,
		Reason: "session deadline " + u.ExpiresAt.UTC().Format(time.RFC3339) + " passed",
	}
	var c *signet.Connector
	var cred *signet.Credential
	err := s.store.View(ctx, func(tx signet.Tx) (err error) {
		c, cred, err = connector(tx, u.Team)
		return err
	})
	switch {
	case err == nil && (c.Backend != u.Backend || c.Bucket != u.Bucket):
		// The team moved to another bucket: signet can no longer reach
		// the old one; the store's lifecycle rule for abandoned uploads
		// must collect the parts.
		ev.Reason += "; the team's connector changed, parts left to the store's lifecycle rule"
	case err == nil:
		b, err := s.openBucket(ctx, c, cred)
		if err == nil {
			err = b.AbortMultipart(ctx, u.Key, u.StoreUploadID)
		}
		if err != nil && signet.ErrorCode(err) != signet.NotFound {
			return err
		}
	case signet.ErrorCode(err) == signet.NotFound:
		ev.Reason += "; the team has no connector any more"
	default:
		return err
	}
	err = s.commit(ctx, func(tx signet.Tx) error {
		return tx.SetUploadState(u.Team, u.ID, signet.UploadAborted)
	}, ev)
	if signet.ErrorCode(err) == signet.Conflict {
		// Another replica's sweeper, or the client, ended it first; that
		// one's record stands.
		return errEnded
	}
	return err
}

// errEnded reports a session that ended while the sweeper looked at it.
var errEnded = errors.New("upload already ended")

// RunSweeper sweeps expired upload sessions every interval until ctx ends.
func (s *Server) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			s.logger.WarnContext(ctx, "sweeping upload sessions", "err", err)
		} else if n > 0 {
			s.logger.InfoContext(ctx, "swept expired upload sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
