package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// auditEvents seeds the log with 60 events of teams ml and cv, of several
// actions, outcomes, keys and times (one a minute from t0), and returns
// them as stored.
func auditEvents(t *testing.T, e *env, t0 time.Time) []*signet.AuditEvent {
	t.Helper()
	actions := []string{signet.ActionPresignDownload, signet.ActionKeyRevoke, signet.ActionPresignUpload}
	outcomes := []string{signet.OutcomeAllowed, signet.OutcomeDenied}
	keys := []string{"data/a", "data/b", "logs/x", "data%", "d\u00e9j\u00e0/y"}
	var evs []*signet.AuditEvent
	for i := range 60 {
		evs = append(evs, &signet.AuditEvent{
			Time: t0.Add(time.Duration(i) * time.Minute), Team: []string{"ml", "cv"}[i%2], ActorUser: "seed",
			Action: actions[i%3], Outcome: outcomes[(i/3)%2], ObjectKey: keys[i%5],
		})
	}
	if err := e.DB.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Fatal(err)
	}
	return evs
}

// getAudit pages through GET /v1/audit with query q, limit per page, and
// returns the events.
func getAudit(t *testing.T, e *env, token string, q url.Values, limit int) []*signet.AuditEvent {
	t.Helper()
	var all []*signet.AuditEvent
	q = maps.Clone(q)
	q.Set("limit", fmt.Sprint(limit))
	for pages := 0; ; pages++ {
		a := e.do("GET", "/v1/audit?"+q.Encode(), token, "")
		if a.Status != 200 {
			t.Fatalf("GET /v1/audit?%s: %d %s", q.Encode(), a.Status, a.Body)
		}
		var page sighttp.AuditPage
		if err := json.Unmarshal(a.Body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if page.NextCursor == "" || pages > 100 {
			return all
		}
		q.Set("cursor", page.NextCursor)
	}
}

func seqs(evs []*signet.AuditEvent) []int64 {
	out := []int64{}
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

// seeded keeps the seeded events (actor "seed") among evs.
func seeded(evs []*signet.AuditEvent) []*signet.AuditEvent {
	return slices.DeleteFunc(slices.Clone(evs), func(e *signet.AuditEvent) bool { return e.ActorUser != "seed" })
}

func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	ml := e.seed("ml", "admin", "instance")
	cv := e.seed("cv", "admin", "member")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	all := auditEvents(t, e, t0)
	keep := func(f func(*signet.AuditEvent) bool) []int64 {
		var out []*signet.AuditEvent
		for _, ev := range all {
			if f(ev) {
				out = append(out, ev)
			}
		}
		return seqs(out)
	}
	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	cases := []struct {
		name  string
		query url.Values
		want  []int64
	}{
		{"action", url.Values{"action": {"key.revoke"}}, keep(func(ev *signet.AuditEvent) bool { return ev.Action == "key.revoke" })},
		{"outcome", url.Values{"outcome": {"denied"}}, keep(func(ev *signet.AuditEvent) bool { return ev.Outcome == "denied" })},
		{"prefix", url.Values{"prefix": {"data/"}}, keep(func(ev *signet.AuditEvent) bool { return strings.HasPrefix(ev.ObjectKey, "data/") })},
		{"prefix%", url.Values{"prefix": {"data%"}}, keep(func(ev *signet.AuditEvent) bool { return ev.ObjectKey == "data%" })},
		{"prefixUTF8", url.Values{"prefix": {"d\u00e9j"}}, keep(func(ev *signet.AuditEvent) bool { return strings.HasPrefix(ev.ObjectKey, "d\u00e9j") })},
		{"since", url.Values{"since": {rfc(t0.Add(50 * time.Minute))}}, keep(func(ev *signet.AuditEvent) bool { return !ev.Time.Before(t0.Add(50 * time.Minute)) })},
		{"until", url.Values{"until": {rfc(t0.Add(10 * time.Minute))}}, keep(func(ev *signet.AuditEvent) bool { return ev.Time.Before(t0.Add(10 * time.Minute)) })},
		{"range in another zone", url.Values{
			"since": {t0.Add(20 * time.Minute).In(time.FixedZone("", -5*3600)).Format(time.RFC3339)},
			"until": {rfc(t0.Add(30 * time.Minute))},
		}, keep(func(ev *signet.AuditEvent) bool {
			return !ev.Time.Before(t0.Add(20*time.Minute)) && ev.Time.Before(t0.Add(30*time.Minute))
		})},
		{"all of them", url.Values{"team": {"ml"}, "action": {"presign.download"}, "outcome": {"allowed"}, "prefix": {"data"},
			"since": {rfc(t0.Add(5 * time.Minute))}, "until": {rfc(t0.Add(55 * time.Minute))}},
			keep(func(ev *signet.AuditEvent) bool {
				return ev.Team == "ml" && ev.Action == "presign.download" && ev.Outcome == "allowed" &&
					strings.HasPrefix(ev.ObjectKey, "data") && !ev.Time.Before(t0.Add(5*time.Minute)) && ev.Time.Before(t0.Add(55*time.Minute))
			})},
	}
	for _, c := range cases {
		for _, limit := range []int{2, 1000} {
			got := seqs(seeded(getAudit(t, e, ml["instance"], c.query, limit)))
			if !slices.Equal(got, c.want) || len(c.want) == 0 {
				t.Errorf("%s, pages of %d: %v, want %v (not empty)", c.name, limit, got, c.want)
			}
		}
	}

	// A team admin sees their team's events only, whatever the filters.
	q := url.Values{"outcome": {"denied"}, "prefix": {"data/"}}
	got := getAudit(t, e, cv["admin"], q, 3)
	want := keep(func(ev *signet.AuditEvent) bool {
		return ev.Team == "cv" && ev.Outcome == "denied" && strings.HasPrefix(ev.ObjectKey, "data/")
	})
	if !slices.Equal(seqs(got), want) || len(want) == 0 {
		t.Errorf("cv admin, denied data/: %v, want %v", seqs(got), want)
	}
	for _, who := range []string{ml["admin"], cv["admin"]} {
		for _, ev := range getAudit(t, e, who, url.Values{}, 1000) {
			if ev.Team != "ml" && who == ml["admin"] || ev.Team != "cv" && who == cv["admin"] {
				t.Errorf("a team admin read event %d of team %q", ev.Seq, ev.Team)
			}
		}
	}
	if a := e.do("GET", "/v1/audit?team=ml&action=key.revoke", cv["admin"], ""); a.Status != 403 {
		t.Errorf("cv admin asking for ml: %d %s, want 403", a.Status, a.Body)
	}
	if a := e.do("GET", "/v1/audit?since="+url.QueryEscape(rfc(t0)), cv["member"], ""); a.Status != 403 {
		t.Errorf("team member: %d %s, want 403", a.Status, a.Body)
	}
	// The instance admin sees every team, and events of none.
	teams := map[string]bool{}
	for _, ev := range getAudit(t, e, ml["instance"], url.Values{}, 1000) {
		teams[ev.Team] = true
	}
	if !teams["ml"] || !teams["cv"] || !teams[""] {
		t.Errorf("instance admin saw teams %v; want ml, cv and none", teams)
	}

	// JSON lines export with the same filters.
	a := e.do("GET", "/v1/audit?format=jsonl&since="+url.QueryEscape(rfc(t0.Add(40*time.Minute)))+"&action=presign.upload", ml["instance"], "")
	if a.Status != 200 || a.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", a.Status, a.Body)
	}
	var exported []*signet.AuditEvent
	sc := bufio.NewScanner(bytes.NewReader(a.Body))
	for sc.Scan() {
		var ev signet.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		exported = append(exported, &ev)
	}
	if want := keep(func(ev *signet.AuditEvent) bool {
		return ev.Action == "presign.upload" && !ev.Time.Before(t0.Add(40*time.Minute))
	}); !slices.Equal(seqs(exported), want) {
		t.Errorf("export: %v, want %v", seqs(exported), want)
	}
}

func TestAuditQueryInvalid(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "instance")["instance"]
	for _, q := range []string{
		"outcome=maybe",
		"outcome=ALLOWED",
		"since=yesterday",
		"since=2026-11-01",
		"until=2026-11-01T00:00:00",
		"until=1700000000",
		"since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
		"prefix=" + url.QueryEscape("data/\xe2\x82"),
		"cursor=-1",
		"limit=0",
	} {
		a := e.do("GET", "/v1/audit?"+q, tok, "")
		if a.Status != 400 || a.code() != string(signet.Invalid) {
			t.Errorf("GET /v1/audit?%s: %d %s, want 400 invalid", q, a.Status, a.Body)
		}
	}
	// The refusals are audited like any other.
	n := 0
	for _, ev := range e.audit() {
		if ev.Action == signet.ActionAuditRead && ev.Outcome == signet.OutcomeDenied && ev.Code == signet.Invalid {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d invalid audit reads recorded, want 10", n)
	}
}

// TestAuditReadDenied checks that a refused audit read says why: a team
// admin asking for another team is told she is not an admin of that
// team, not that only admins may read the log.
func TestAuditReadDenied(t *testing.T) {
	e := newEnv(t)
	ml := e.seed("ml", "admin", "member")
	e.seed("default")
	for _, tc := range []struct{ who, query, team string }{
		{"admin", "team=default", "default"},
		{"member", "team=ml", "ml"},
		{"member", "", ""},
	} {
		a := e.do("GET", "/v1/audit?"+tc.query, ml[tc.who], "")
		wantProblem(t, a, 403, string(signet.PermissionDenied))
		var p struct{ Detail string }
		json.Unmarshal(a.Body, &p)
		if named := strings.Contains(p.Detail, fmt.Sprintf("team %q", tc.team)); named != (tc.team != "") {
			t.Errorf("%s of ml asking ?%s: detail %q; names team %q: %v, want %v", tc.who, tc.query, p.Detail, tc.team, named, !named)
		}
	}
}
