package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// auditOf returns the audit events of the request that got a, by request id.
func (e *env) auditOf(a answer) []*signet.AuditEvent {
	e.t.Helper()
	id := a.Header.Get("X-Request-Id")
	if id == "" {
		e.t.Fatalf("answer without X-Request-Id")
	}
	var out []*signet.AuditEvent
	for _, ev := range e.audit() {
		if ev.RequestID == id {
			out = append(out, ev)
		}
	}
	return out
}

// TestReadRefusalsAudited checks that reads refused for lack of
// permission are on the record: one denied entry each, naming the actor,
// the team asked about and the read's action, while the same reads,
// allowed, record nothing, and refusals that were already recorded are
// not recorded twice.
func TestReadRefusalsAudited(t *testing.T) {
	e := newEnv(t)
	ml := e.seed("ml", "member")["member"]
	cv := e.seed("cv", "admin", "instance")
	e.seed("mlsvc-team", "member") // a user whose keys the member may not list
	err := e.DB.Update(context.Background(), func(tx signet.Tx) error {
		return tx.CreateUser(&signet.User{Name: "mlsvc", Service: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	const actor = "ml-member-0"

	refused := []struct{ path, team, action, target, allowedBy string }{
		{"/v1/teams/cv", "cv", signet.ActionTeamRead, "", "admin"},
		{"/v1/teams/cv/connector", "cv", signet.ActionConnectorRead, "", "admin"},
		{"/v1/teams/cv/members", "cv", signet.ActionMemberList, "", "admin"},
		{"/v1/teams/nosuchteam", "nosuchteam", signet.ActionTeamRead, "", ""},
		{"/v1/users", "", signet.ActionUserList, "", "instance"},
		{"/v1/keys?user=mlsvc", "", signet.ActionKeyList, "mlsvc", "instance"},
		{"/v1/revocations?team=cv", "cv", signet.ActionRevocationList, "", "instance"},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.path, func(t *testing.T) {
			a := e.do("GET", tc.path, ml, "")
			wantProblem(t, a, 403, string(signet.PermissionDenied))
			evs := e.auditOf(a)
			if len(evs) != 1 {
				t.Fatalf("%d audit entries for the refusal, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Outcome != signet.OutcomeDenied || ev.Code != signet.PermissionDenied || ev.Reason == "" {
				t.Errorf("entry %s %s %q, want denied %s with a reason", ev.Outcome, ev.Code, ev.Reason, signet.PermissionDenied)
			}
			if ev.ActorUser != actor || ev.ActorKey == "" {
				t.Errorf("actor %q key %q, want %q and its key", ev.ActorUser, ev.ActorKey, actor)
			}
			if ev.Team != tc.team || ev.Action != tc.action || ev.Target != tc.target {
				t.Errorf("team %q action %q target %q, want %q %q %q", ev.Team, ev.Action, ev.Target, tc.team, tc.action, tc.target)
			}
			if ev.ClientIP == "" {
				t.Error("no client address")
			}
		})
	}
	for _, tc := range refused {
		if tc.allowedBy == "" {
			continue
		}
		t.Run("allowed "+tc.path, func(t *testing.T) {
			a := e.do("GET", tc.path, cv[tc.allowedBy], "")
			if a.Status != 200 {
				t.Fatalf("%d %s, want 200", a.Status, a.Body)
			}
			if evs := e.auditOf(a); len(evs) != 0 {
				t.Errorf("%d audit entries for an allowed read, want none", len(evs))
			}
		})
	}
	// A member reading its own team, a key list of its own: allowed, not
	// recorded.
	for _, path := range []string{"/v1/teams/ml", "/v1/teams/ml/members", "/v1/keys"} {
		if a := e.do("GET", path, ml, ""); a.Status != 200 || len(e.auditOf(a)) != 0 {
			t.Errorf("GET %s as a member: %d, %d audit entries; want 200 and none", path, a.Status, len(e.auditOf(a)))
		}
	}
	// Handlers that record their own refusals record each once.
	for _, tc := range []struct{ method, path, body, action string }{
		{"GET", "/v1/audit?team=cv", "", signet.ActionAuditRead},
		{"GET", "/v1/teams/cv/usage", "", signet.ActionUsageRead},
		{"PUT", "/v1/teams/cv/connector", `{"backend":"local"}`, signet.ActionConnectorSet},
		{"GET", "/v1/teams/cv/objects", "", signet.ActionObjectList},
	} {
		a := e.do(tc.method, tc.path, ml, tc.body)
		if a.Status != 403 {
			t.Errorf("%s %s: %d %s, want 403", tc.method, tc.path, a.Status, a.Body)
		}
		evs := e.auditOf(a)
		if len(evs) != 1 || evs[0].Action != tc.action || evs[0].Outcome != signet.OutcomeDenied {
			t.Errorf("%s %s: %d entries, want one denied %s", tc.method, tc.path, len(evs), tc.action)
			for _, ev := range evs {
				t.Logf("  %s %s %s", ev.Action, ev.Outcome, ev.Code)
			}
		}
	}
	// Unauthenticated requests are recorded as before: once, as
	// auth.authenticate.
	a := e.do("GET", "/v1/teams/cv", "", "")
	wantProblem(t, a, 401, string(signet.Unauthenticated))
	if evs := e.auditOf(a); len(evs) != 1 || evs[0].Action != signet.ActionAuthenticate {
		t.Errorf("unauthenticated read: %d entries, want one %s", len(evs), signet.ActionAuthenticate)
	}
}

// TestReadRefusalAuditFails checks that a read refused while its record
// cannot be written is still refused with 403, and that the failure is
// counted.
func TestReadRefusalAuditFails(t *testing.T) {
	e := newEnv(t)
	ml := e.seed("ml", "member")["member"]
	e.seed("cv")
	// The key's first use is noted with a write; make it before the lock.
	if a := e.do("GET", "/v1/whoami", ml, ""); a.Status != 200 {
		t.Fatalf("whoami: %d %s", a.Status, a.Body)
	}
	failures := e.metricValue("signet_audit_failures_total")
	e.DB.WriteTimeout = 300 * time.Millisecond
	release := lockDatabase(t, e.DB.Path())
	a := e.do("GET", "/v1/teams/cv", ml, "")
	release()
	wantProblem(t, a, 403, string(signet.PermissionDenied))
	if got := e.metricValue("signet_audit_failures_total") - failures; got != 1 {
		t.Errorf("signet_audit_failures_total rose by %v, want 1", got)
	}
	if evs := e.auditOf(a); len(evs) != 0 {
		t.Errorf("%d audit entries although the store was locked", len(evs))
	}
}
