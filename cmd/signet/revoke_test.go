package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// fetch GETs url and returns the status and, for a problem answer, its
// code.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, ""
	}
	var p struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p.Code
}

// presignGet returns a download URL for key in team, obtained with token.
func presignGet(t *testing.T, c cli, team, key string) string {
	t.Helper()
	return strings.TrimSpace(c.must("presign", "get", team, key))
}

func wantWorks(t *testing.T, what, url string) {
	t.Helper()
	if st, code := fetch(t, url); st != http.StatusOK {
		t.Errorf("%s: %d %s, want 200", what, st, code)
	}
}

func wantRevoked(t *testing.T, what, url string) {
	t.Helper()
	if st, code := fetch(t, url); st != http.StatusForbidden || code != "revoked" {
		t.Errorf("%s: %d %q, want 403 revoked", what, st, code)
	}
}

// revokeSetup makes teams ml and web on the local store, each with an
// object "f"; bob (two keys) and carol are members of ml, dave of web,
// alice is ml's admin.
type revokeSetup struct {
	m                   *Main
	admin, alice        cli
	bob1, bob2, carol   cli
	dave                cli
	bob1Key, bob2Key    string
	adminToken, bobUser string
}

func newRevokeSetup(t *testing.T, m *Main, adminToken string) *revokeSetup {
	admin := cli{tb: t, addr: m.URL(), token: adminToken}
	s := &revokeSetup{m: m, admin: admin, adminToken: adminToken, bobUser: "bob"}
	for _, team := range []string{"ml", "web"} {
		admin.must("team", "create", team)
		admin.must("connector", "set", team, "--backend", "local")
	}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		admin.must("user", "create", u)
	}
	admin.must("member", "add", "ml", "alice", "--role", "admin")
	admin.must("member", "add", "ml", "bob", "--role", "member")
	admin.must("member", "add", "ml", "carol", "--role", "member")
	admin.must("member", "add", "web", "dave", "--role", "member")
	key := func(u string) (cli, string) {
		tok := strings.TrimSpace(admin.must("key", "create", u))
		return admin.as(tok), keyID(t, tok)
	}
	s.alice, _ = key("alice")
	s.bob1, s.bob1Key = key("bob")
	s.bob2, s.bob2Key = key("bob")
	s.carol, _ = key("carol")
	s.dave, _ = key("dave")
	for _, c := range []struct {
		who  cli
		team string
	}{{s.bob1, "ml"}, {s.dave, "web"}} {
		u := strings.TrimSpace(c.who.must("presign", "put", c.team, "f"))
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("data"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("upload to %s: %v %v", c.team, err, resp)
		}
		resp.Body.Close()
	}
	return s
}

// TestRevokeLocal revokes local-store URLs by key, user, team and time
// window: URLs issued before the revocation fail at once, URLs issued
// after it and URLs of other keys, users and teams keep working.
func TestRevokeLocal(t *testing.T) {
	m, adminToken := MustRunMain(t)
	s := newRevokeSetup(t, m, adminToken)

	// By key, user and team: the URL the revoked party got before fails,
	// another party's works, and one the revoked party gets after works.
	for _, c := range []struct {
		name       string
		by         cli
		args       []string
		hit        cli    // presigns in ml, and is revoked
		hitWhat    string // names hit's URLs in messages
		spared     cli    // presigns in sparedTeam, and is not revoked
		sparedTeam string
		sparedWhat string
		out        string // what revoke must print
	}{
		{"Key", s.admin, []string{"--key", s.bob1Key}, s.bob1, "key 1", s.bob2, "ml", "same user's other key", "team ml (local): enforced"},
		{"User", s.admin, []string{"--user", "carol"}, s.carol, "carol's", s.bob1, "ml", "bob's URL", ""},
		// A team admin may revoke their own team.
		{"Team", s.alice, []string{"--team", "ml"}, s.bob2, "ml", s.dave, "web", "web URL", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			hit, spared := presignGet(t, c.hit, "ml", "f"), presignGet(t, c.spared, c.sparedTeam, "f")
			wantWorks(t, c.hitWhat+" URL before", hit)
			if out := c.by.must(append([]string{"revoke"}, c.args...)...); !strings.Contains(out, c.out) {
				t.Errorf("revoke output does not say %q:\n%s", c.out, out)
			}
			wantRevoked(t, c.hitWhat+" URL issued before", hit)
			wantWorks(t, c.sparedWhat, spared)
			wantWorks(t, c.hitWhat+" URL issued after", presignGet(t, c.hit, "ml", "f"))
		})
	}
	t.Run("Parts", func(t *testing.T) {
		// Part URLs of a chunked upload: their grant is the upload.parts
		// record's.
		c := sighttp.NewClient(s.m.URL(), s.carol.token)
		up, err := c.CreateUpload(t.Context(), "ml", &sighttp.CreateUploadRequest{Key: "big", Size: 8, PartSize: 5 << 20})
		if err != nil {
			t.Fatal(err)
		}
		parts, err := c.UploadParts(t.Context(), "ml", up.ID, []int{1})
		if err != nil {
			t.Fatal(err)
		}
		p := parts.Parts[0]
		s.admin.must("revoke", "--user", "carol", "--team", "ml")
		req, _ := http.NewRequest(p.Method, p.URL, strings.NewReader("12345678"))
		for k, v := range p.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var prob struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&prob)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || prob.Code != "revoked" {
			t.Errorf("part URL issued before the revocation: %d %q, want 403 revoked", resp.StatusCode, prob.Code)
		}
	})
	t.Run("Window", func(t *testing.T) {
		before := presignGet(t, s.dave, "web", "f")
		time.Sleep(5 * time.Millisecond)
		since := time.Now()
		time.Sleep(5 * time.Millisecond)
		inside := presignGet(t, s.dave, "web", "f")
		time.Sleep(5 * time.Millisecond)
		until := time.Now()
		time.Sleep(5 * time.Millisecond)
		after := presignGet(t, s.dave, "web", "f")
		s.admin.must("revoke", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano))
		wantWorks(t, "URL issued before the window", before)
		wantRevoked(t, "URL issued in the window", inside)
		wantWorks(t, "URL issued after the window", after)
	})

	t.Run("Refusals", func(t *testing.T) {
		for _, c := range []struct {
			name string
			who  cli
			args []string
			code string
		}{
			{"team admin, other team", s.alice, []string{"revoke", "--team", "web"}, "permission_denied"},
			{"team admin, no team", s.alice, []string{"revoke", "--user", "bob"}, "permission_denied"},
			{"member", s.bob1, []string{"revoke", "--team", "ml"}, "permission_denied"},
			{"future until", s.admin, []string{"revoke", "--until", time.Now().Add(time.Hour).Format(time.RFC3339)}, "invalid"},
			{"empty window", s.admin, []string{"revoke", "--since", "1h", "--until", "2h"}, "invalid"},
			{"bad team name", s.admin, []string{"revoke", "--team", "Bad Name"}, "invalid"},
			{"bad key id", s.admin, []string{"revoke", "--key", "no/such"}, "invalid"},
		} {
			if r := c.who.run(c.args...); r.code != 1 || !strings.Contains(r.stderr, "("+c.code+")") {
				t.Errorf("%s: exit %d %q, want %s", c.name, r.code, r.stderr, c.code)
			}
		}
		// No selector: the CLI refuses it as a usage error, the API as invalid.
		if r := s.admin.run("revoke"); r.code != 2 {
			t.Errorf("revoke without selector: exit %d, want 2", r.code)
		}
		if st, p := httpDo(t, "POST", s.m.URL()+"/v1/revocations", s.adminToken, `{}`); st != 400 || p["code"] != "invalid" {
			t.Errorf("API revoke without selector: %d %v", st, p)
		}
	})

	t.Run("List", func(t *testing.T) {
		var all, mine []*signet.Revocation
		json.Unmarshal([]byte(s.admin.must("revoke", "list", "--json")), &all)
		json.Unmarshal([]byte(s.alice.must("revoke", "list", "--json")), &mine)
		if len(all) != 5 {
			t.Errorf("admin lists %d revocations, want 5", len(all))
		}
		for _, r := range mine {
			if r.Team != "ml" {
				t.Errorf("team admin lists a revocation of team %q", r.Team)
			}
		}
		if len(mine) != 2 {
			t.Errorf("team admin lists %d revocations, want ml's 2", len(mine))
		}
		if r := s.bob1.run("revoke", "list"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
			t.Errorf("member revoke list: exit %d %q", r.code, r.stderr)
		}
		if out := s.admin.must("revoke", "list"); !strings.Contains(out, "ISSUED BEFORE") || !strings.Contains(out, "carol") {
			t.Errorf("revoke list table:\n%s", out)
		}
	})

	t.Run("Audit", func(t *testing.T) {
		var evs []signet.AuditEvent
		json.Unmarshal([]byte(s.admin.must("audit", "list", "--all", "--limit", "1000", "--json")), &evs)
		count := map[string]int{}
		for _, e := range evs {
			if e.Action == signet.ActionRevoke {
				count[e.Outcome]++
			}
		}
		// 5 revocations; 8 refusals recorded (the usage error never
		// reached the server; the empty API request did).
		if count[signet.OutcomeAllowed] != 5 || count[signet.OutcomeDenied] != 8 {
			t.Errorf("revoke audit events %v, want 5 allowed and 8 denied", count)
		}
	})
}

// TestRevokeResponseLimitations checks the answer states, per store, what
// a revocation cannot withdraw.
func TestRevokeResponseLimitations(t *testing.T) {
	m, adminToken := MustRunMain(t)
	c := sighttp.NewClient(m.URL(), adminToken)
	ctx := t.Context()
	admin := cli{tb: t, addr: m.URL(), token: adminToken}
	for _, team := range []string{"s3static", "s3role", "az"} {
		admin.must("team", "create", team)
	}
	conns := map[string]sighttp.ConnectorRequest{
		"s3static": {Backend: "s3", Bucket: "bkt-static", Endpoint: "http://127.0.0.1:1", Credentials: map[string]string{"access_key_id": "AK", "secret_access_key": "SK"}},
		"s3role": {Backend: "s3", Bucket: "bkt-role", Prefix: "t/", Endpoint: "http://127.0.0.1:1", Options: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/signet"},
			Credentials: map[string]string{"access_key_id": "AK", "secret_access_key": "SK"}},
		"az": {Backend: "azure", Bucket: "cont", Endpoint: "http://127.0.0.1:1/devstoreaccount1", Options: map[string]string{"account": "devstoreaccount1"},
			Credentials: map[string]string{"account_key": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="}},
	}
	for team, req := range conns {
		if _, err := c.SetConnector(ctx, team, req); err != nil {
			t.Fatalf("connector %s: %v", team, err)
		}
	}
	out, err := c.Revoke(ctx, &sighttp.RevokeRequest{})
	if signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("empty revocation: %v, want invalid", err)
	}
	before := time.Now()
	out, err = c.Revoke(ctx, &sighttp.RevokeRequest{User: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Revocation.ID == "" || out.Revocation.User != "admin" || out.Revocation.IssuedBefore.Before(before.Add(-time.Second)) {
		t.Errorf("revocation = %+v", out.Revocation)
	}
	effects := map[string]sighttp.StoreRevocation{}
	for _, s := range out.Stores {
		effects[s.Team] = s
	}
	want := map[string]string{"default": sighttp.RevokeEnforced, "s3static": sighttp.RevokeNotEnforced,
		"s3role": sighttp.RevokeSessionReplaced, "az": sighttp.RevokeNotEnforced}
	for team, effect := range want {
		s, ok := effects[team]
		switch {
		case !ok:
			t.Errorf("no effect stated for team %s", team)
		case s.Effect != effect:
			t.Errorf("team %s: effect %q, want %q", team, s.Effect, effect)
		case effect != sighttp.RevokeEnforced && len(s.Limitations) == 0:
			t.Errorf("team %s: no limitation stated", team)
		case effect == sighttp.RevokeEnforced && len(s.Limitations) != 0:
			t.Errorf("team %s: limitations %q on an enforced store", team, s.Limitations)
		}
	}
	// The role connector's answer carries the deny on older sessions.
	var st struct {
		Effect    string
		Resource  []string
		Condition map[string]map[string]string
	}
	if err := json.Unmarshal(effects["s3role"].PolicyStatement, &st); err != nil {
		t.Fatalf("policy statement %s: %v", effects["s3role"].PolicyStatement, err)
	}
	tit, err := time.Parse(time.RFC3339, st.Condition["DateLessThan"]["aws:TokenIssueTime"])
	if st.Effect != "Deny" || len(st.Resource) != 1 || st.Resource[0] != "arn:aws:s3:::bkt-role/t/*" ||
		st.Condition["ArnEquals"]["aws:PrincipalArn"] != "arn:aws:iam::123456789012:role/signet" ||
		err != nil || !tit.Equal(out.Revocation.IssuedBefore.Truncate(time.Second)) {
		t.Errorf("policy statement %s", effects["s3role"].PolicyStatement)
	}
	if len(out.Limitations) < 3 {
		t.Errorf("top-level limitations %q, want one per limited store at least", out.Limitations)
	}
}

// TestBackendsDrop checks that a revocation's drop forgets the cached
// drivers of its team only (of every team when it names none), so the
// next URL of that team is signed by a new driver and, for an S3 role, a
// new session.
func TestBackendsDrop(t *testing.T) {
	b := &backends{}
	ctx := t.Context()
	conn := func(team string) *signet.Connector {
		return &signet.Connector{Team: team, Backend: signet.BackendS3, Bucket: "bkt-" + team, Endpoint: "http://127.0.0.1:1",
			Options: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/signet"}}
	}
	secret := map[string]string{"access_key_id": "AK", "secret_access_key": "SK"}
	open := func(team string) any {
		t.Helper()
		be, err := b.Open(ctx, conn(team), secret)
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
	ml, web := open("ml"), open("web")
	if open("ml") != ml {
		t.Fatal("driver not cached")
	}
	b.drop("ml")
	if open("ml") == ml {
		t.Error("team ml's driver survived its revocation")
	}
	if open("web") != web {
		t.Error("team web's driver was dropped by ml's revocation")
	}
	b.drop("")
	if open("web") == web {
		t.Error("a revocation naming no team left team web's driver")
	}
}
