package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet"
)

// TestUsageLocalStore runs "issued versus used" on the default install:
// the built-in local store reports the uses of its URLs itself, with no
// ingest set up. An upload and a download are presigned through the API
// and used with Go's HTTP client, the download also with a tampered
// signature (refused, not recorded), for a PUT (refused, recorded) and
// with an X-Forwarded-For the server does not trust; a third URL is left
// unused. The server is stopped right after the last request, so what the
// report shows after a restart was stored by Close at the latest.
func TestUsageLocalStore(t *testing.T) {
	m, adminToken := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: adminToken}
	admin.must("team", "create", "ml")
	admin.must("connector", "set", "ml", "--backend", "local")
	admin.must("member", "add", "ml", "admin", "--role", "admin")
	trainer := addMember(admin, "ml", "trainer", "member", "--service")

	payload := bytes.Repeat([]byte("usage! "), 1000)
	put := presignJSON(t, trainer, "put", "ml", "in/a.bin", "--size", "7000")
	getURL := strings.TrimSpace(trainer.must("presign", "get", "ml", "in/a.bin"))
	unusedURL := strings.TrimSpace(trainer.must("presign", "get", "ml", "in/never.bin"))
	putGrant, getGrant, unusedGrant := grantParam(t, put.URL), grantParam(t, getURL), grantParam(t, unusedURL)

	if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
		t.Fatalf("PUT via presigned URL answered %d", st)
	}
	if got := httpGet(t, getURL); !bytes.Equal(got, payload) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(payload))
	}
	// signet trusts no proxy here: the address is the TCP peer's.
	if st := send(t, "GET", getURL, map[string]string{"X-Forwarded-For": "203.0.113.9"}, nil); st != http.StatusOK {
		t.Fatalf("GET with X-Forwarded-For answered %d", st)
	}
	// The same grant with another well-formed signature: refused, and not
	// recorded, since only a URL the store signed makes it write anything.
	sig := mustParse(t, getURL).Query().Get("sig")
	flipped := "A"
	if sig[0] == 'A' {
		flipped = "B"
	}
	if st := send(t, "GET", strings.Replace(getURL, "sig="+sig, "sig="+flipped+sig[1:], 1), nil, nil); st != http.StatusForbidden {
		t.Fatalf("tampered URL answered %d", st)
	}
	// The download URL used for a PUT: refused after its signature checked
	// out, and recorded as a failed attempt with the bytes of the refusal.
	req, err := http.NewRequest("PUT", getURL, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refusal, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT with the download URL answered %s", resp.Status)
	}

	// Drops are counted on /metrics.
	metrics := string(httpGet(t, m.URL()+"/metrics"))
	for _, want := range []string{`signet_usage_events_dropped_total{reason="queue_full"} 0`, `signet_usage_events_dropped_total{reason="store_error"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Stop right away: Close stores what is still queued.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Usage.Dropped() != 0 || m.Usage.Failed() != 0 || m.Usage.Stored() != 4 {
		t.Errorf("queue counts: stored %d, dropped %d, failed %d; want 4, 0, 0", m.Usage.Stored(), m.Usage.Dropped(), m.Usage.Failed())
	}
	again := &Main{Config: m.Config}
	mustRun(t, again)
	admin.addr = again.URL()

	var grants []*signet.GrantUsage
	if err := json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", "--json")), &grants); err != nil {
		t.Fatal(err)
	}
	g := byGrant(grants)
	if len(grants) != 3 {
		t.Errorf("usage lists %d grants, want 3: %s", len(grants), mustJSON(grants))
	}
	if p := g[putGrant]; p == nil || !p.Used || p.Uses != 1 || p.Failed != 0 || p.BytesReceived != int64(len(payload)) ||
		p.BytesSent != 0 || addrList(p) != "127.0.0.1" {
		t.Errorf("upload grant: %s", mustJSON(p))
	}
	if d := g[getGrant]; d == nil || !d.Used || d.Uses != 2 || d.Failed != 1 ||
		d.BytesSent != 2*int64(len(payload))+int64(len(refusal)) || d.BytesReceived != 0 || addrList(d) != "127.0.0.1" {
		t.Errorf("download grant (2 uses, 1 refused, %d+%d+%d bytes sent): %s", len(payload), len(payload), len(refusal), mustJSON(d))
	}
	if u := g[unusedGrant]; u == nil || u.Used || u.Uses != 0 || u.Failed != 0 || len(u.Addresses) != 0 {
		t.Errorf("unused grant: %s", mustJSON(u))
	}
	var unused []*signet.GrantUsage
	json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", "--unused", "--json")), &unused)
	if len(unused) != 1 || unused[0].GrantID != unusedGrant {
		t.Errorf("usage --unused: %s, want only %s", mustJSON(unused), unusedGrant)
	}

	// Nothing secret was stored: not the signatures.
	db := readAll(t, filepath.Join(m.Config.DataDir, "signet.db"), filepath.Join(m.Config.DataDir, "signet.db-wal"))
	for _, u := range []string{put.URL, getURL} {
		if s := mustParse(t, u).Query().Get("sig"); s == "" || bytes.Contains(db, []byte(s)) {
			t.Errorf("the database holds a URL's signature (or the URL has none): %q", s)
		}
	}
}
