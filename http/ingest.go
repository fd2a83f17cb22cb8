package http

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/accesslog"
)

// Ingestion of the stores' access records (see docs/audit.md, "Issued
// versus used"). The caller authenticates with an API key like any other;
// it may ingest when it is an instance admin or a user an instance admin
// allowed to (PUT /v1/ingest/users/{user}, kept in the instance setting
// signet.IngestSetting+name). Such a user, a service user, needs no team
// membership and gets no other right from it: MinIO holds its key.
//
// Ingesting is not a decision and is not written to the audit log, which
// would otherwise grow by one entry per store request; a refused ingest
// is.

// maxIngestBody bounds an ingest request: a MinIO batch or a chunk of
// access log lines. The CLI sends log files in smaller chunks.
const maxIngestBody = 8 << 20

// ingestBatch is how many events one transaction stores.
const ingestBatch = 1000

// IngestResult is the answer to an ingest request.
type IngestResult struct {
	// Events is how many records carried a grant id; Stored how many of
	// them were new, the rest being reports already stored (a retried
	// webhook, a log imported twice).
	Events int `json:"events"`
	Stored int `json:"stored"`
	// Skipped counts records without a (well-formed) grant id: requests
	// not made with a URL signet issued.
	Skipped int `json:"skipped"`
}

// mayIngest returns nil when the caller may ingest usage events.
func (s *Server) mayIngest(ctx context.Context, a signet.Actor) error {
	if a.Admin {
		return nil
	}
	var v string
	err := s.store.View(ctx, func(tx signet.Tx) (err error) {
		v, err = tx.Setting(signet.IngestSetting + a.User)
		return err
	})
	if err != nil && signet.ErrorCode(err) != signet.NotFound {
		return err
	}
	if v != "on" {
		return signet.Errorf(signet.PermissionDenied,
			"user %s may not ingest usage events; an instance admin can allow it with `signet audit ingester %s`", a.User, a.User)
	}
	return nil
}

// ingestBody authorises an ingest request and reads its body.
func (s *Server) ingestBody(w http.ResponseWriter, r *http.Request, ev *signet.AuditEvent) ([]byte, bool) {
	if err := s.mayIngest(r.Context(), actorOf(r)); err != nil {
		s.deny(w, r, ev, err)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIngestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = signet.Errorf(signet.TooLarge, "request body exceeds %d bytes", maxIngestBody)
		} else {
			err = signet.E("ingest", signet.Invalid, "reading request body", err)
		}
		s.deny(w, r, ev, err)
		return nil, false
	}
	return body, true
}

// storeUsage stores events in transactions of ingestBatch.
func (s *Server) storeUsage(ctx context.Context, events []*signet.UsageEvent) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, auditDeadline)
	defer cancel()
	stored := 0
	for len(events) > 0 {
		batch := events[:min(len(events), ingestBatch)]
		events = events[len(batch):]
		now := s.now()
		for _, e := range batch {
			e.IngestedAt = now
		}
		err := s.store.Update(ctx, func(tx signet.Tx) error {
			u, err := signet.UsageOf(tx)
			if err != nil {
				return err
			}
			n, err := u.AppendUsage(batch...)
			stored += n
			return err
		})
		if err != nil {
			return stored, err
		}
	}
	return stored, nil
}

// handleIngestMinIO takes MinIO's audit webhook posts: one audit entry, or
// a batch of them one after another.
func (s *Server) handleIngestMinIO(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUsageIngest)
	ev.Target = signet.UsageSourceMinIO
	body, ok := s.ingestBody(w, r, ev)
	if !ok {
		return
	}
	events, skipped, err := accesslog.MinIO(bytes.NewReader(body))
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	s.finishIngest(w, r, events, skipped)
}

// handleIngestS3AccessLog takes S3 server access log lines as text.
func (s *Server) handleIngestS3AccessLog(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUsageIngest)
	ev.Target = signet.UsageSourceS3AccessLog
	body, ok := s.ingestBody(w, r, ev)
	if !ok {
		return
	}
	var events []*signet.UsageEvent
	st, err := accesslog.S3Lines(bytes.NewReader(body), ingestBatch, func(evs []*signet.UsageEvent) error {
		events = append(events, evs...)
		return nil
	})
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	s.finishIngest(w, r, events, st.Skipped)
}

func (s *Server) finishIngest(w http.ResponseWriter, r *http.Request, events []*signet.UsageEvent, skipped int) {
	stored, err := s.storeUsage(r.Context(), events)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, IngestResult{Events: len(events), Stored: stored, Skipped: skipped})
}

// IngestUser says whether a user may ingest usage events.
type IngestUser struct {
	User   string `json:"user"`
	Ingest bool   `json:"ingest"`
}

// handleSetIngestUser allows (PUT) or stops (DELETE) a service user to
// ingest usage events. Instance admins only.
func (s *Server) handleSetIngestUser(w http.ResponseWriter, r *http.Request) {
	allow := r.Method == http.MethodPut
	action := signet.ActionIngestRevoke
	if allow {
		action = signet.ActionIngestAllow
	}
	ev := s.event(r, action)
	name := r.PathValue("user")
	ev.Target = name
	if err := requireAdmin(actorOf(r)); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ok := s.do(w, r, ev, func(tx signet.Tx) error {
		u, err := tx.User(name)
		if err != nil {
			return err
		}
		if allow && !u.Service {
			return signet.Errorf(signet.Invalid, "%s is not a service user; create one for the store (signet user create NAME --service)", name)
		}
		v := ""
		if allow {
			v = "on"
		}
		return tx.SetSetting(signet.IngestSetting+name, v)
	})
	if ok {
		writeJSON(w, http.StatusOK, IngestUser{User: name, Ingest: allow})
	}
}
