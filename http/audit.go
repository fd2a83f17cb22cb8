package http

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/signetdev/signet"
)

// AuditPage is one page of audit events. NextCursor, when set, fetches the
// next page.
type AuditPage struct {
	Events     []*signet.AuditEvent `json:"events"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// auditFilter builds the filter for the caller: instance admins see every
// event, team admins their teams' events, others nothing.
func (s *Server) auditFilter(r *http.Request) (signet.AuditFilter, error) {
	q := r.URL.Query()
	f := signet.AuditFilter{Team: q.Get("team"), Actor: q.Get("actor"), Action: q.Get("action"),
		Outcome: q.Get("outcome"), KeyPrefix: q.Get("prefix")}
	switch f.Outcome {
	case "", signet.OutcomeAllowed, signet.OutcomeDenied, signet.OutcomeError:
	default:
		return f, signet.Errorf(signet.Invalid, "outcome must be %s, %s or %s",
			signet.OutcomeAllowed, signet.OutcomeDenied, signet.OutcomeError)
	}
	var err error
	if f.Since, f.Until, err = timeRange(q); err != nil {
		return f, err
	}
	if err := f.Check(); err != nil {
		return f, err
	}
	if f.AfterID, f.Limit, err = pageQuery(q); err != nil {
		return f, err
	}
	a := actorOf(r)
	if a.Admin {
		return f, nil
	}
	err = s.store.View(r.Context(), func(tx signet.Tx) error {
		ms, err := tx.Memberships(a.User)
		if err != nil {
			return err
		}
		f.Teams = []string{}
		for _, m := range ms {
			if m.Role == signet.RoleAdmin && (f.Team == "" || f.Team == m.Team) {
				f.Teams = append(f.Teams, m.Team)
			}
		}
		return nil
	})
	switch {
	case err != nil || len(f.Teams) > 0:
	case f.Team != "":
		err = signet.Errorf(signet.PermissionDenied, "%s is not an admin of team %q; only its admins and instance admins may read its audit log", a.User, f.Team)
	default:
		err = signet.Errorf(signet.PermissionDenied, "only instance admins and team admins may read the audit log")
	}
	return f, err
}

// timeRange reads the since and until of a query: RFC 3339 times, zero
// when absent, and until not before since.
func timeRange(q url.Values) (since, until time.Time, err error) {
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return since, until, signet.Errorf(signet.Invalid, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", b.name)
		}
		*b.t = t
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return since, until, signet.Errorf(signet.Invalid, "until is before since")
	}
	return since, until, nil
}

// pageQuery reads the cursor (the id after which a page starts) and limit
// (1 to signet.MaxAuditPage; 0 when absent) of a paged query.
func pageQuery(q url.Values) (afterID int64, limit int, err error) {
	if c := q.Get("cursor"); c != "" {
		afterID, err = strconv.ParseInt(c, 10, 64)
		if err != nil || afterID < 0 {
			return 0, 0, signet.Errorf(signet.Invalid, "cursor is malformed")
		}
	}
	if l := q.Get("limit"); l != "" {
		limit, err = strconv.Atoi(l)
		if err != nil || limit < 1 || limit > signet.MaxAuditPage {
			return 0, 0, signet.Errorf(signet.Invalid, "limit must be between 1 and %d", signet.MaxAuditPage)
		}
	}
	return afterID, limit, nil
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionAuditRead)
	f, err := s.auditFilter(r)
	ev.Team = f.Team
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	if r.URL.Query().Get("format") == "jsonl" {
		s.exportAudit(w, r, f)
		return
	}
	var page AuditPage
	err = s.store.View(r.Context(), func(tx signet.Tx) (err error) {
		page.Events, err = tx.Audit(f)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.Events == nil {
		page.Events = []*signet.AuditEvent{}
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if n := len(page.Events); n == limit {
		page.NextCursor = strconv.FormatInt(page.Events[n-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

// exportAudit streams every matching event as JSON lines.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request, f signet.AuditFilter) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	f.Limit = signet.MaxAuditPage
	for {
		var evs []*signet.AuditEvent
		err := s.store.View(r.Context(), func(tx signet.Tx) (err error) {
			evs, err = tx.Audit(f)
			return err
		})
		if err != nil {
			// Headers are sent; end the stream early. The client sees a
			// truncated export and the error is logged.
			s.logger.ErrorContext(r.Context(), "audit export", "request_id", requestID(r), "err", err)
			return
		}
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return
			}
		}
		if len(evs) < f.Limit {
			return
		}
		f.AfterID = evs[len(evs)-1].ID
	}
}
