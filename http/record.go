package http

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet"
)

// auditDeadline bounds how long a decision waits for its audit record to
// become durable before the request is refused with 503.
const auditDeadline = 5 * time.Second

// event starts an audit record for r.
func (s *Server) event(r *http.Request, action string) *signet.AuditEvent {
	a := actorOf(r)
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return &signet.AuditEvent{
		Time:      s.now(),
		RequestID: requestID(r),
		ActorUser: a.User,
		ActorKey:  a.KeyID,
		Action:    action,
		ClientIP:  s.clientIP(r).String(),
		UserAgent: ua,
	}
}

// maxAuditKey bounds object keys copied into audit records: a refused key
// may be far longer than any valid one.
const maxAuditKey = 1100

// auditKey returns key as it goes into an audit record.
func auditKey(key string) string {
	if len(key) > maxAuditKey {
		return key[:maxAuditKey] + "…"
	}
	return key
}

// commit runs fn and appends evs in one transaction, durably, within the
// audit deadline. Events without an outcome are marked allowed.
func (s *Server) commit(ctx context.Context, fn func(tx signet.Tx) error, evs ...*signet.AuditEvent) error {
	ctx, cancel := context.WithTimeout(ctx, auditDeadline)
	defer cancel()
	start := time.Now()
	err := s.store.Update(ctx, func(tx signet.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if ev.Outcome == "" {
				ev.Outcome = signet.OutcomeAllowed
			}
		}
		return tx.AppendAudit(evs...)
	})
	s.metrics.auditWrite.Observe(time.Since(start).Seconds())
	if c := signet.ErrorCode(err); c == signet.Unavailable || c == signet.Internal {
		s.metrics.auditFail.Inc()
	}
	switch {
	case err == nil:
		s.auditHealth.failed.Store(false)
	case signet.ErrorCode(err) == signet.Unavailable:
		s.auditHealth.failed.Store(true)
	}
	return err
}

// auditHealth remembers whether the latest audit commit failed for want of
// the store, for /readyz.
type auditHealth struct{ failed atomic.Bool }

// probeReason fills the readiness probe's entry.
var probeReason = strings.Repeat("readiness probe, never committed. ", 256)

// errProbe ends the readiness probe's transaction, so that it never commits.
var errProbe = errors.New("readiness probe, rolled back on purpose")

// ready reports whether an audit record can be made durable now. The
// store's Ping (can it be reached, can the write lock be taken) answers
// that while nothing has failed. After an audit commit failed as
// Unavailable it is not enough: a full disk lets the lock be taken but not
// a page be added. Then ready also appends a probe entry and rolls it
// back, until that succeeds or an audit commit does.
func (s *Server) ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	if !s.auditHealth.failed.Load() {
		return nil
	}
	err := s.store.Update(ctx, func(tx signet.Tx) error {
		// Larger than any request's entry, so that it needs room a
		// request's would: a new page, where a full disk has none.
		ev := &signet.AuditEvent{Time: s.now(), Action: "readyz.probe", Outcome: signet.OutcomeError,
			Reason: probeReason}
		if err := tx.AppendAudit(ev); err != nil {
			return err
		}
		// A store may hold appended events until the function ends;
		// reading the head makes it write them now.
		if _, err := tx.AuditHead(); err != nil {
			return err
		}
		return errProbe
	})
	if !errors.Is(err, errProbe) {
		return auditUnavailable(err)
	}
	s.auditHealth.failed.Store(false)
	return nil
}

// deny records that r was refused with err and answers with err. If the
// record itself cannot be written, the answer is 503.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, ev *signet.AuditEvent, err error) {
	s.denyObjects(w, r, ev, err, nil)
}

func (s *Server) denyObjects(w http.ResponseWriter, r *http.Request, ev *signet.AuditEvent, err error, objs []ObjectResult) {
	markFailed(ev, err)
	if aerr := s.commit(r.Context(), nil, ev); aerr != nil {
		s.writeError(w, r, auditUnavailable(aerr))
		return
	}
	s.writeProblem(w, r, err, objs)
}

// refusedRead says how the refusal of a read that is not recorded when
// allowed is recorded: its action, and the query parameters, if any, that
// name the team asked about and the event's target (a team named in the
// path is the event's team).
type refusedRead struct {
	action, team, target string
}

// refusedReads are the reads that record their refusals through
// recordRefusal, by route.
var refusedReads = map[string]refusedRead{
	"GET /v1/teams/{team}":           {action: signet.ActionTeamRead},
	"GET /v1/teams/{team}/connector": {action: signet.ActionConnectorRead},
	"GET /v1/teams/{team}/members":   {action: signet.ActionMemberList},
	"GET /v1/users":                  {action: signet.ActionUserList},
	"GET /v1/keys":                   {action: signet.ActionKeyList, target: "user"},
	"GET /v1/revocations":            {action: signet.ActionRevocationList, team: "team"},
}

// recordRefusal records that an authenticated request was refused with
// err, a PermissionDenied, by a handler that answered it with writeError
// rather than deny: a read, which records nothing when allowed, so that
// probing is on the record too. A route refusedReads does not know is
// recorded as signet.ActionRequest with the route as target. Only the
// refusal path runs this; allowed requests pay nothing for it.
//
// The refusal stands whether or not its record can be written: the
// answer is the 403 either way, and a failed write is counted in
// signet_audit_failures_total (commit) and logged.
func (s *Server) recordRefusal(r *http.Request, err error) {
	if actorOf(r).User == "" {
		return // not authenticated: authenticate records its own refusals
	}
	rr, ok := refusedReads[r.Pattern]
	if !ok {
		rr.action = signet.ActionRequest
	}
	ev := s.event(r, rr.action)
	ev.Team = r.PathValue("team")
	if rr.team != "" {
		ev.Team = r.URL.Query().Get(rr.team)
	}
	switch {
	case !ok:
		ev.Target = r.Pattern
	case rr.target != "":
		ev.Target = r.URL.Query().Get(rr.target)
	}
	markFailed(ev, err)
	if aerr := s.commit(r.Context(), nil, ev); aerr != nil {
		s.logger.ErrorContext(r.Context(), "recording a refusal", "request_id", requestID(r),
			"action", ev.Action, "err", aerr)
	}
}

func markFailed(ev *signet.AuditEvent, err error) {
	ev.Code = signet.ErrorCode(err)
	ev.Reason = signet.ErrorMessage(err)
	ev.Outcome = signet.OutcomeDenied
	if ev.Code == signet.Internal || ev.Code == signet.Unavailable {
		ev.Outcome = signet.OutcomeError
	}
}

// auditUnavailable turns a failure to record a decision into the error the
// client sees: the decision is void.
func auditUnavailable(err error) error {
	if signet.ErrorCode(err) == signet.Unavailable {
		return err
	}
	return signet.E("audit", signet.Unavailable, "audit log unavailable; request not performed", err)
}

// do runs an administrative change and its audit record in one transaction
// and answers: with ok's result on success, with the recorded refusal
// otherwise.
func (s *Server) do(w http.ResponseWriter, r *http.Request, ev *signet.AuditEvent, fn func(tx signet.Tx) error) bool {
	err := s.commit(r.Context(), fn, ev)
	if err == nil {
		return true
	}
	if c := signet.ErrorCode(err); c == signet.Unavailable || c == signet.Internal {
		s.writeError(w, r, auditUnavailable(err))
		return false
	}
	s.deny(w, r, ev, err)
	return false
}

// teamRole returns the team and the actor's role in it, after checking that
// the actor may do p. Non-admins get PermissionDenied for teams that do not
// exist, so team names do not leak.
func teamRole(tx signet.Tx, a signet.Actor, name string, p signet.Permission) (*signet.Team, signet.Role, error) {
	t, role, _, err := teamMemberships(tx, a, name, p)
	return t, role, err
}

// teamMemberships is teamRole, also returning all the actor's memberships
// (which the authorisation cache keeps).
func teamMemberships(tx signet.Tx, a signet.Actor, name string, p signet.Permission) (*signet.Team, signet.Role, []*signet.Member, error) {
	t, err := tx.Team(name)
	if err != nil {
		if signet.ErrorCode(err) == signet.NotFound && !a.Admin {
			return nil, "", nil, signet.Authorize(a, name, "", p)
		}
		return nil, "", nil, err
	}
	ms, err := tx.Memberships(a.User)
	if err != nil && signet.ErrorCode(err) != signet.NotFound {
		return nil, "", nil, err
	}
	var role signet.Role
	for _, m := range ms {
		if m.Team == name {
			role = m.Role
		}
	}
	if err := signet.Authorize(a, name, role, p); err != nil {
		return nil, "", nil, err
	}
	return t, role, ms, nil
}
