package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// TestWalkthrough follows the README's five-minute walkthrough through the
// CLI and plain HTTP against a real server.
func TestWalkthrough(t *testing.T) {
	m, adminToken := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: adminToken}

	admin.must("team", "create", "ml")
	admin.must("user", "create", "alice")
	admin.must("user", "create", "trainer", "--service")
	admin.must("user", "create", "bob")
	admin.must("member", "add", "ml", "alice", "--role", "admin")
	admin.must("member", "add", "ml", "trainer", "--role", "member")
	admin.must("member", "add", "ml", "bob", "--role", "viewer")
	aliceToken := strings.TrimSpace(admin.must("key", "create", "alice"))
	trainerToken := strings.TrimSpace(admin.must("key", "create", "trainer"))
	bobToken := strings.TrimSpace(admin.must("key", "create", "bob"))
	for _, tok := range []string{aliceToken, trainerToken, bobToken} {
		if !strings.HasPrefix(tok, "sgt_") || strings.Contains(tok, "\n") {
			t.Fatalf("key create printed %q, want only a token", tok)
		}
	}
	alice, trainer, bob := admin.as(aliceToken), admin.as(trainerToken), admin.as(bobToken)

	// The team admin sets the connector; a viewer may not.
	alice.must("connector", "set", "ml", "--backend", "local", "--prefix", "runs/")
	if r := bob.run("connector", "set", "ml", "--backend", "local"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("viewer connector set: exit %d, stderr %q; want permission_denied", r.code, r.stderr)
	}

	// Upload and download through URLs the CLI prints.
	payload := []byte("weights v1\n")
	r := trainer.run("presign", "put", "ml", "model/weights.bin")
	if r.code != 0 {
		t.Fatalf("presign put: %s", r.stderr)
	}
	putURL := strings.TrimSpace(r.stdout)
	if !strings.Contains(putURL, "/blob/ml/runs/model/weights.bin?") {
		t.Errorf("upload URL %q does not address the team's bucket and prefix", putURL)
	}
	req, _ := http.NewRequest("PUT", putURL, bytes.NewReader(payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT via presigned URL: %s", resp.Status)
	}
	getURL := strings.TrimSpace(bob.must("presign", "get", "ml", "model/weights.bin"))
	got := httpGet(t, getURL)
	if !bytes.Equal(got, payload) {
		t.Errorf("downloaded %q, want %q", got, payload)
	}
	// The object sits under the connector's prefix on disk.
	if b, err := os.ReadFile(filepath.Join(m.Config.DataDir, "blobs", "objects", "ml", "runs", "model", "weights.bin")); err != nil || !bytes.Equal(b, payload) {
		t.Errorf("object on disk: %q, %v", b, err)
	}

	// A viewer cannot get an upload URL; the refusal is audited.
	if r := bob.run("presign", "put", "ml", "x"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("viewer presign put: exit %d %q", r.code, r.stderr)
	}
	// Nobody outside the team gets a URL for it.
	admin.must("user", "create", "eve")
	eve := admin.as(strings.TrimSpace(admin.must("key", "create", "eve")))
	if r := eve.run("presign", "get", "ml", "model/weights.bin"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("outsider presign get: exit %d %q", r.code, r.stderr)
	}

	// Large file through chunked upload and back.
	cpRoundTrip(t, trainer, 23<<20+12345, "cp round trip")

	// --expires-in: the URL lives exactly as long as asked, and says so;
	// more than the team's cap is refused, never clamped.
	before := time.Now().Truncate(time.Second)
	r = trainer.run("presign", "get", "ml", "model/weights.bin", "--expires-in", "10m")
	after := time.Now()
	if r.code != 0 {
		t.Fatalf("presign get --expires-in 10m: %s", r.stderr)
	}
	u, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := strconv.ParseInt(u.Query().Get("expires"), 10, 64)
	urlExp := time.Unix(secs, 0)
	if urlExp.Before(before.Add(10*time.Minute)) || urlExp.After(after.Add(10*time.Minute)) {
		t.Errorf("--expires-in 10m: URL expires at %v, want 10 min after %v", urlExp, before)
	}
	if want := "expires " + urlExp.UTC().Format(time.RFC3339); !strings.Contains(r.stderr, want) {
		t.Errorf("--expires-in 10m: stderr %q, want %q (the URL's real expiry)", r.stderr, want)
	}
	if got := httpGet(t, u.String()); !bytes.Equal(got, payload) {
		t.Errorf("GET with --expires-in URL: %q", got)
	}
	if r := trainer.run("presign", "get", "ml", "model/weights.bin", "--expires-in", "2h"); r.code != 1 || !strings.Contains(r.stderr, "invalid_expiry") || r.stdout != "" {
		t.Errorf("--expires-in above the cap: exit %d, stdout %q, stderr %q; want invalid_expiry and no URL", r.code, r.stdout, r.stderr)
	}

	// The raw API (DESIGN §4): one POST signs a batch; a bad object gets
	// its own error while the others get URLs.
	batchKeys := []string{"model/weights.bin", "ckpt/big.bin"}
	for i := range 1000 {
		batchKeys = append(batchKeys, fmt.Sprintf("shard/%04d.bin", i))
	}
	batchKeys = append(batchKeys, "../x")
	objs := make([]map[string]string, len(batchKeys))
	for i, k := range batchKeys {
		objs[i] = map[string]string{"key": k}
	}
	body, _ := json.Marshal(map[string]any{"operation": "download", "objects": objs})
	req, _ = http.NewRequest("POST", m.URL()+"/v1/teams/ml/presign", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+trainerToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var batch struct {
		Objects []struct {
			Key, Method, URL string
			Headers          map[string]string
			ExpiresAt        *time.Time `json:"expires_at"`
			Error            *struct{ Code string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&batch)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(batch.Objects) != len(batchKeys) {
		t.Fatalf("batch presign: %s, %d objects, %v", resp.Status, len(batch.Objects), err)
	}
	for i, o := range batch.Objects[:len(batchKeys)-1] {
		if o.Key != batchKeys[i] || o.Method != "GET" || !strings.Contains(o.URL, "/blob/ml/runs/"+batchKeys[i]+"?") || o.Headers == nil || o.ExpiresAt == nil || o.Error != nil {
			t.Fatalf("batch object %d: %+v, want a GET URL for %q with headers and expires_at", i, o, batchKeys[i])
		}
	}
	if o := batch.Objects[len(batchKeys)-1]; o.URL != "" || o.Error == nil || o.Error.Code != "invalid_key" {
		t.Errorf("batch object ../x: %+v, want invalid_key and no URL", o)
	}
	if got := httpGet(t, batch.Objects[0].URL); !bytes.Equal(got, payload) {
		t.Errorf("GET with a batch URL: %q", got)
	}

	// Traversal is refused, with no URL; the refusal is audited below.
	if r := trainer.run("presign", "put", "ml", "../etc/passwd"); r.code != 1 || !strings.Contains(r.stderr, "invalid_key") || r.stdout != "" {
		t.Errorf("presign put ../etc/passwd: exit %d, stdout %q, stderr %q; want invalid_key and no URL", r.code, r.stdout, r.stderr)
	}

	// Key listing shows ids, never secrets; revocation is immediate.
	keys := admin.must("key", "list", "bob", "--json")
	if strings.Contains(keys, strings.TrimPrefix(bobToken, "sgt_")[17:]) {
		t.Error("key list shows the secret")
	}
	var ks []signet.APIKey
	json.Unmarshal([]byte(keys), &ks)
	if len(ks) != 1 || ks[0].LastUsedAt == nil {
		t.Fatalf("key list = %+v, want one used key", ks)
	}
	admin.must("key", "revoke", ks[0].ID)
	if r := bob.run("whoami"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("revoked key: exit %d %q", r.code, r.stderr)
	}

	// The audit log holds every decision, and never a URL.
	var evs []signet.AuditEvent
	if err := json.Unmarshal([]byte(admin.must("audit", "list", "--all", "--limit", "1000", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Action+"/"+e.Outcome]++
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), "sig=") || strings.Contains(string(raw), "sgt_") {
			t.Errorf("audit event holds a secret: %s", raw)
		}
	}
	for _, want := range []string{
		"team.create/allowed", "user.create/allowed", "member.add/allowed", "key.create/allowed",
		"connector.set/allowed", "connector.set/denied", "presign.upload/allowed", "presign.download/allowed",
		"presign.upload/denied", "presign.download/denied", "upload.create/allowed", "upload.parts/allowed",
		"upload.complete/allowed", "key.revoke/allowed", "auth.authenticate/denied",
	} {
		if count[want] == 0 {
			t.Errorf("audit log has no %s event", want)
		}
	}
	// A team admin sees only their team's events.
	var teamEvs []signet.AuditEvent
	json.Unmarshal([]byte(alice.must("audit", "list", "--json", "--limit", "1000")), &teamEvs)
	for _, e := range teamEvs {
		if e.Team != "ml" {
			t.Errorf("team admin sees event of team %q", e.Team)
		}
	}
	if r := trainer.run("audit", "list"); r.code != 1 {
		t.Errorf("member audit list: exit %d, want refusal", r.code)
	}

	// audit list --team: only that team's events, the traversal refusal
	// among them with the key exactly as sent.
	admin.must("team", "create", "cv")
	var mlEvs []signet.AuditEvent
	if err := json.Unmarshal([]byte(admin.must("audit", "list", "--team", "ml", "--all", "--limit", "1000", "--json")), &mlEvs); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range mlEvs {
		if e.Team != "ml" {
			t.Errorf("audit list --team ml shows an event of team %q (%s)", e.Team, e.Action)
		}
		if e.Action == signet.ActionPresignUpload && e.Code == signet.InvalidKey && e.ObjectKey == "../etc/passwd" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("audit list --team ml: %d presign.upload invalid_key events for ../etc/passwd, want 1", refused)
	}
	if table := admin.must("audit", "list", "--team", "ml", "--outcome", "denied", "--limit", "1000"); !strings.Contains(table, "../etc/passwd") {
		t.Errorf("audit list --team ml table does not show the refused key:\n%s", table)
	}

	// audit export: every event as one JSON line, in order, none holding a
	// URL or a secret, the other team's too.
	lines := strings.Split(strings.TrimSuffix(admin.must("audit", "export"), "\n"), "\n")
	var last int64
	teams := map[string]bool{}
	for _, line := range lines {
		var e signet.AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		if e.ID <= last {
			t.Errorf("audit export: id %d after %d", e.ID, last)
		}
		last = e.ID
		teams[e.Team] = true
		if strings.Contains(line, "sig=") || strings.Contains(line, "sgt_") {
			t.Errorf("audit export line holds a secret: %s", line)
		}
	}
	if len(lines) < len(evs) || !teams["ml"] || !teams["cv"] {
		t.Errorf("audit export: %d lines for teams %v; want at least the %d events listed, of ml and cv", len(lines), teams, len(evs))
	}
}

// cpRoundTrip copies size random bytes to signet://ml/ckpt/big.bin with
// signet cp, in 5 MiB parts, and back, failing (as what) unless the same
// bytes come back.
func cpRoundTrip(t *testing.T, c cli, size int, what string) {
	t.Helper()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	data := make([]byte, size)
	rand.Read(data)
	os.WriteFile(big, data, 0o600)
	c.must("cp", "--part-size", "5242880", big, "signet://ml/ckpt/big.bin")
	back := filepath.Join(dir, "back.bin")
	c.must("cp", "signet://ml/ckpt/big.bin", back)
	if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
		t.Errorf("%s: %d bytes back, want %d equal bytes", what, len(b), len(data))
	}
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET via presigned URL: %s", resp.Status)
	}
	return b
}
