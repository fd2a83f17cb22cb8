package http_test

import (
	"testing"

	"github.com/signetdev/signet"
)

// TestUsageQueryInvalid checks that the usage reports refuse the times
// the audit query refuses, an until before since included, and record
// the refusal.
func TestUsageQueryInvalid(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "instance")["instance"]
	queries := []string{
		"since=yesterday",
		"until=2026-11-01T00:00:00",
		"since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
		"since=2026-11-01T00:30:00-01:00&until=2026-11-01T01:00:00Z&unused=true", // 01:30Z and 01:00Z
	}
	for _, path := range []string{"/v1/usage", "/v1/teams/ml/usage"} {
		for _, q := range queries {
			a := e.do("GET", path+"?"+q, tok, "")
			wantProblem(t, a, 400, string(signet.Invalid))
		}
		// An empty window is no error.
		if a := e.do("GET", path+"?since=2026-11-01T00:00:00Z&until=2026-11-01T00:00:00Z", tok, ""); a.Status != 200 {
			t.Errorf("GET %s, since = until: %d %s, want 200", path, a.Status, a.Body)
		}
	}
	n := 0
	for _, ev := range e.audit() {
		if ev.Action == signet.ActionUsageRead && ev.Outcome == signet.OutcomeDenied && ev.Code == signet.Invalid {
			n++
		}
	}
	if n != 2*len(queries) {
		t.Errorf("%d invalid usage reads recorded, want %d", n, 2*len(queries))
	}
}
