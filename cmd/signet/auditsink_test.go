package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runWithConfig starts a real server, in dev mode, from a config file.
func runWithConfig(t testing.TB, yaml string, env map[string]string) (*Main, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "signet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if err := ReadConfigFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	m := &Main{Config: cfg, Dev: true, Getenv: func(k string) string { return env[k] }}
	return m, mustRun(t, m)
}

// TestAuditSinkFile: a file sink from the config file receives the same
// lines as `signet audit export`, byte for byte.
func TestAuditSinkFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sink", "audit.jsonl")
	m, token := runWithConfig(t, fmt.Sprintf(`
audit_sinks:
  - name: archive
    type: file
    path: %s
    max_size: 1MiB
`, out), nil)
	c := cli{tb: t, addr: m.URL(), token: token}
	c.must("team", "create", "ml")
	c.must("user", "create", "alice")
	for i := range 5 {
		c.must("presign", "get", "default", fmt.Sprintf("k/%d", i))
	}
	export := c.must("audit", "export")
	want := strings.SplitAfter(export, "\n")
	want = want[:len(want)-1] // after the last newline
	if len(want) < 8 {
		t.Fatalf("export has %d lines", len(want))
	}
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		got = strings.SplitAfter(string(b), "\n")
		got = got[:len(got)-1]
		if len(got) >= len(want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) < len(want) {
		t.Fatalf("sink file has %d lines, export %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\nsink   %s\nexport %s", i+1, got[i], want[i])
		}
	}
	// With nothing pruned and the sink started at the beginning, the file
	// is a complete export: it verifies.
	c.must("audit", "verify", "--file", out)
	metrics := string(httpGet(t, m.URL()+"/metrics"))
	if !strings.Contains(metrics, `signet_audit_sink_delivered_total{sink="archive"}`) ||
		!strings.Contains(metrics, `signet_audit_sink_lag_entries{sink="archive"}`) {
		t.Errorf("/metrics lacks the sink's metrics")
	}
}

// TestAuditSinkHungWebhook: a receiver that never answers does not hold
// up requests; their entries wait in the log and the spool.
func TestAuditSinkHungWebhook(t *testing.T) {
	var entered atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	m, token := runWithConfig(t, fmt.Sprintf(`
audit_sinks:
  - name: siem
    type: webhook
    url: %s/ingest
    headers:
      Authorization: Bearer ${SIEM_TOKEN}
    timeout: 1h
`, srv.URL), map[string]string{"SIEM_TOKEN": "tok"})

	// Wait until the sink is stuck inside a request.
	deadline := time.Now().Add(10 * time.Second)
	for entered.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if entered.Load() == 0 {
		t.Fatal("the sink never called the receiver")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 30 {
		req, _ := http.NewRequest("POST", m.URL()+"/v1/teams/default/presign",
			strings.NewReader(fmt.Sprintf(`{"operation":"download","objects":[{"key":"k/%d"}]}`, i)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("presign %d while the sink hangs: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("presign %d: status %d", i, resp.StatusCode)
		}
	}
	if n := entered.Load(); n != 1 {
		t.Errorf("receiver entered %d times; want the one hung request", n)
	}
	// The sink reports what it has not delivered (once it has read the
	// last commits).
	var lag float64
	for deadline := time.Now().Add(10 * time.Second); lag < 30 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range bytes.Split(httpGet(t, m.URL()+"/metrics"), []byte("\n")) {
			if s, ok := strings.CutPrefix(string(l), `signet_audit_sink_lag_entries{sink="siem"} `); ok {
				fmt.Sscan(s, &lag)
			}
		}
	}
	if lag < 30 {
		t.Errorf("lag = %v, want at least the 30 presigns", lag)
	}
}

func TestAuditSinkConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("audit_sinks:\n  - name: a\n    type: file\n    path: x\n    rotate: daily\n"), 0o600)
	cfg := DefaultConfig()
	err := ReadConfigFile(path, &cfg)
	if err == nil || !strings.Contains(err.Error(), `unknown key "rotate"`) {
		t.Errorf("unknown key in a sink: %v", err)
	}

	cfg = DefaultConfig()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", filepath.Join(dir, "data")
	os.WriteFile(path, []byte("audit_sinks:\n  - name: siem\n    type: webhook\n    url: http://127.0.0.1:1/\n    headers: {X-Token: '${NOPE}'}\n"), 0o600)
	if err := ReadConfigFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Getenv: func(string) string { return "" }}
	err = m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("webhook header naming an unset variable: Run = %v", err)
	}
}

// BenchmarkPresignSinks measures presign requests with sinks configured
// against none, in one run: "file" (fsync per batch), "webhook" (a fast
// receiver) and "webhook-down" (a receiver answering 503, the spool
// filling and the sink falling behind).
func BenchmarkPresignSinks(b *testing.B) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	for _, bc := range []struct{ name, yaml string }{
		{"none", ""},
		{"file", "audit_sinks:\n  - {name: f, type: file, path: %s/audit.jsonl}\n"},
		{"webhook", "audit_sinks:\n  - {name: w, type: webhook, url: " + ok.URL + "}\n"},
		{"webhook-down", "audit_sinks:\n  - {name: w, type: webhook, url: " + down.URL + ", backoff_min: 10ms, backoff_max: 100ms}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			y := bc.yaml
			if strings.Contains(y, "%s") {
				y = fmt.Sprintf(y, b.TempDir())
			}
			m, token := runWithConfig(b, y, nil)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			body := []byte(`{"operation":"download","objects":[{"key":"datasets/shard-00001.tar"}]}`)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", m.URL()+"/v1/teams/default/presign", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
