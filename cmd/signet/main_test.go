package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditsink"
	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/internal/testpeer"
)

// MustRunMain starts a real signet server on 127.0.0.1:0 with a temporary
// data directory and the dev bootstrap, and returns it with the admin token.
func MustRunMain(tb testing.TB) (*Main, string) {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = tb.TempDir()
	m := &Main{Config: cfg, Dev: true}
	return m, mustRun(tb, m)
}

// mustRun starts m, closes it when the test ends and returns the admin
// token that the dev bootstrap saved in its data directory.
func mustRun(tb testing.TB, m *Main) string {
	tb.Helper()
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("starting signet: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	b, err := os.ReadFile(filepath.Join(m.Config.DataDir, "admin-token"))
	if err != nil {
		tb.Fatalf("reading admin token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// mustRunReplicas starts n signet servers on one PostgreSQL database and
// one data directory (so they share the local store and its keys), the
// first with the dev bootstrap, and returns them with the admin token.
func mustRunReplicas(tb testing.TB, n int) ([]*Main, string) {
	tb.Helper()
	url := testpeer.PostgresURL(tb)
	dir := tb.TempDir()
	mains := make([]*Main, n)
	for i := range mains {
		cfg := DefaultConfig()
		cfg.Addr, cfg.DataDir, cfg.DB = "127.0.0.1:0", dir, url
		mains[i] = &Main{Config: cfg, Dev: i == 0}
		// One after the other: only the first bootstraps.
		if err := mains[i].Run(context.Background()); err != nil {
			tb.Fatalf("replica %d: %v", i, err)
		}
		tb.Cleanup(func() { mains[i].Close() })
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		tb.Fatal(err)
	}
	return mains, strings.TrimSpace(string(b))
}

// cli runs the signet CLI in process against m with token.
type cli struct {
	tb    testing.TB
	addr  string
	token string
	stdin io.Reader
	env   map[string]string // more environment variables
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func (c cli) run(args ...string) cliResult {
	c.tb.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: c.stdin, Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "SIGNET_ADDR":
			return c.addr
		case "SIGNET_TOKEN":
			return c.token
		}
		return c.env[k]
	}}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	code := Run(context.Background(), args, env)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs args and fails the test unless they succeed.
func (c cli) must(args ...string) string {
	c.tb.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.tb.Fatalf("signet %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func (c cli) as(token string) cli { c.token = token; return c }

func TestBootstrap(t *testing.T) {
	m, token := MustRunMain(t)
	fi, err := os.Stat(filepath.Join(m.Config.DataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", fi.Mode().Perm())
	}
	c := cli{tb: t, addr: m.URL(), token: token}
	var who struct {
		User  string
		Admin bool
		Teams []signet.Member
	}
	if err := json.Unmarshal([]byte(c.must("whoami", "--json")), &who); err != nil {
		t.Fatal(err)
	}
	if who.User != "admin" || !who.Admin || len(who.Teams) != 1 || who.Teams[0].Team != "default" || who.Teams[0].Role != signet.RoleAdmin {
		t.Errorf("whoami = %+v, want admin of team default", who)
	}
	var conn signet.Connector
	json.Unmarshal([]byte(c.must("connector", "get", "default", "--json")), &conn)
	if conn.Backend != "local" || conn.Bucket != "default" {
		t.Errorf("default connector = %+v", conn)
	}

	// A second start on the same data directory does not bootstrap again.
	m.Close()
	var out bytes.Buffer
	m2 := &Main{Config: m.Config, Dev: true, Stdout: &out}
	m2.Config.Addr = "127.0.0.1:0"
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if out.Len() != 0 {
		t.Errorf("second start printed %q, want nothing", out.String())
	}
	c.addr = m2.URL()
	c.must("whoami") // the first token still works
}

// httpDo sends a JSON request with a bearer token and returns the status
// and decoded problem code, if any.
func httpDo(t *testing.T, method, url, token string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestBootstrapTokenOutput: the first start shows the admin's API key on
// standard output, unless an audit sink streams the log there, where
// collectors would ship the key on with the audit stream; the key is in
// its file either way.
func TestBootstrapTokenOutput(t *testing.T) {
	for _, stdoutSink := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		if stdoutSink {
			cfg.AuditSinks = []auditsink.Config{{Name: "siem", Type: auditsink.TypeStdout}}
		}
		var out syncbuf.Buffer
		m := &Main{Config: cfg, Dev: true, Stdout: &out}
		token := mustRun(t, m)
		m.Close()
		shown := strings.Contains(out.String(), token)
		if shown == stdoutSink {
			t.Errorf("stdout sink %v: key shown on standard output: %v; output %q", stdoutSink, shown, out.String())
		}
		if !strings.Contains(out.String(), filepath.Join(cfg.DataDir, "admin-token")) {
			t.Errorf("stdout sink %v: the output does not say where the key is saved: %q", stdoutSink, out.String())
		}
	}
}
