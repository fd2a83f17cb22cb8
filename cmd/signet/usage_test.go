package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestUsageMinIOWebhook runs "issued versus used" for real: MinIO's audit
// webhook posts to a signet server, which joins the store's reports to
// the URLs it issued. One upload URL and one download URL are used (the
// download also through a "proxy" that reports another client address),
// one download URL is not, and `signet audit usage` tells them apart.
func TestUsageMinIOWebhook(t *testing.T) {
	m, adminToken := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: adminToken}
	admin.must("user", "create", "minio-audit", "--service")
	ingestKey := strings.TrimSpace(admin.must("key", "create", "minio-audit"))
	ingestURL := m.URL() + "/v1/ingest/minio"

	// The endpoint takes no unauthenticated writes, and an API key alone
	// is not enough: an instance admin must allow its user.
	if st, _ := httpDo(t, "POST", ingestURL, "", "{}"); st != http.StatusUnauthorized {
		t.Errorf("ingest without a key: %d, want 401", st)
	}
	if st, _ := httpDo(t, "POST", ingestURL, ingestKey, "{}"); st != http.StatusForbidden {
		t.Errorf("ingest by a user not allowed to: %d, want 403", st)
	}
	admin.must("audit", "ingester", "minio-audit")

	peer := testpeer.StartMinIO(t,
		"MINIO_AUDIT_WEBHOOK_ENABLE_SIGNET=on",
		"MINIO_AUDIT_WEBHOOK_ENDPOINT_SIGNET="+ingestURL,
		"MINIO_AUDIT_WEBHOOK_AUTH_TOKEN_SIGNET=Bearer "+ingestKey,
		"MINIO_AUDIT_WEBHOOK_BATCH_SIZE_SIGNET=1",
	)
	bucket := peer.Bucket(t)
	admin.must("team", "create", "ml")
	admin.must("team", "set", "ml", "--allow-cidr", "127.0.0.0/8")
	trainer := addMember(admin, "ml", "trainer", "member", "--service")
	admin.must("member", "add", "ml", "admin", "--role", "admin")
	setS3Connector(admin, peer, bucket)

	payload := bytes.Repeat([]byte("usage! "), 1000)
	put := presignJSON(t, trainer, "put", "ml", "in/a.bin", "--size", "7000")
	getURL := strings.TrimSpace(trainer.must("presign", "get", "ml", "in/a.bin"))
	unusedURL := strings.TrimSpace(trainer.must("presign", "get", "ml", "in/never.bin"))
	putGrant, getGrant, unusedGrant := grantOf(t, put.URL), grantOf(t, getURL), grantOf(t, unusedURL)

	if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
		t.Fatalf("PUT via presigned URL answered %d", st)
	}
	if got := httpGet(t, getURL); !bytes.Equal(got, payload) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(payload))
	}
	// MinIO takes the client address from X-Forwarded-For (as it would
	// behind a proxy): this use comes from outside the team's networks.
	if st := send(t, "GET", getURL, map[string]string{"X-Forwarded-For": "203.0.113.9"}, nil); st != http.StatusOK {
		t.Fatalf("GET with X-Forwarded-For answered %d", st)
	}

	// MinIO sends audit entries asynchronously: poll with a deadline.
	var grants []*signet.GrantUsage
	deadline := time.Now().Add(60 * time.Second)
	for {
		grants = nil
		if err := json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", "--json")), &grants); err != nil {
			t.Fatal(err)
		}
		g := byGrant(grants)
		if g[putGrant] != nil && g[putGrant].Uses >= 1 && g[getGrant] != nil && g[getGrant].Uses >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO's audit events did not arrive within a minute; usage %s\nMinIO log:\n%s", mustJSON(grants), peer.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("usage as MinIO reported it: %s", mustJSON(grants))
	g := byGrant(grants)
	if len(grants) != 3 {
		t.Errorf("usage lists %d grants, want 3: %s", len(grants), mustJSON(grants))
	}
	if p := g[putGrant]; p == nil || !p.Used || p.Uses != 1 || p.BytesReceived != int64(len(payload)) ||
		p.Method != "PUT" || addrList(p) != "127.0.0.1" || p.Outside || p.IssuedTo != "trainer" {
		t.Errorf("upload grant: %s", mustJSON(p))
	}
	if d := g[getGrant]; d == nil || !d.Used || d.Uses != 2 || d.BytesSent != 2*int64(len(payload)) ||
		d.Method != "GET" || addrList(d) != "127.0.0.1,203.0.113.9!" || !d.Outside {
		t.Errorf("download grant: %s", mustJSON(d))
	}
	if u := g[unusedGrant]; u == nil || u.Used || u.Uses != 0 || len(u.Addresses) != 0 {
		t.Errorf("unused grant: %s", mustJSON(u))
	}

	// The filters, and the human table.
	for flag, want := range map[string]string{"--unused": unusedGrant, "--outside": getGrant} {
		var only []*signet.GrantUsage
		json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", flag, "--json")), &only)
		if len(only) != 1 || only[0].GrantID != want {
			t.Errorf("usage %s: %s, want only %s", flag, mustJSON(only), want)
		}
	}
	table := admin.must("audit", "usage", "--since", "1h")
	for _, want := range []string{putGrant, getGrant, unusedGrant, "203.0.113.9!", "127.0.0.1"} {
		if !strings.Contains(table, want) {
			t.Errorf("usage table lacks %q:\n%s", want, table)
		}
	}
	if r := trainer.run("audit", "usage", "--team", "ml"); r.code == 0 {
		t.Errorf("a team member who is not its admin read the usage report")
	}
	if r := trainer.run("audit", "usage"); r.code == 0 {
		t.Errorf("a non-admin read the instance-wide usage report")
	}

	// Nothing secret was stored: not the signature, not the credential.
	db := readAll(t, filepath.Join(m.Config.DataDir, "signet.db"), filepath.Join(m.Config.DataDir, "signet.db-wal"))
	for _, u := range []string{put.URL, getURL} {
		q := mustParse(t, u).Query()
		for _, secret := range []string{q.Get("X-Amz-Signature"), q.Get("X-Amz-Credential")} {
			if secret == "" || bytes.Contains(db, []byte(secret)) {
				t.Errorf("the database holds a URL's signature or credential (or the URL has none): %q", secret)
			}
		}
	}
}

// TestAuditIngestS3AccessLog imports S3 server access log lines through
// the CLI and joins them to URLs the server issued.
func TestAuditIngestS3AccessLog(t *testing.T) {
	admin := serverWithTeams(t, "ml")
	admin.must("member", "add", "ml", "admin", "--role", "admin")
	admin.must("connector", "set", "ml", "--backend", "local")
	getURL := strings.TrimSpace(admin.must("presign", "get", "ml", "a.bin"))
	unusedURL := strings.TrimSpace(admin.must("presign", "get", "ml", "b.bin"))
	grant, unused := grantParam(t, getURL), grantParam(t, unusedURL)

	// Lines as S3 writes them, for this grant: one served, one refused,
	// one of another request, and the served one again (a re-import).
	line := func(reqID, ip string, status, sent string) string {
		return `79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be ml [27/Nov/2026:09:41:07 +0000] ` + ip +
			` - ` + reqID + ` REST.GET.OBJECT a.bin "GET /ml/a.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&x-signet-grant=` +
			grant + `&X-Amz-Signature=abc123 HTTP/1.1" ` + status + ` - ` + sent + ` 1048576 85 12 "-" "curl/8.5.0" - hostid= SigV4 TLS_AES_128_GCM_SHA256 QueryString ml.s3.us-east-1.amazonaws.com TLSv1.3 - -`
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "2026-11-27-09-45-00-EXAMPLE")
	os.WriteFile(file, []byte(line("REQ1", "192.0.2.10", "200", "1048576")+"\n"+
		line("REQ2", "198.51.100.3", "403", "243")+"\n"+
		`79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be ml [27/Nov/2026:09:41:08 +0000] 192.0.2.10 - REQ3 REST.GET.BUCKET - "GET /ml?list-type=2 HTTP/1.1" 200 - 512 - 3 - "-" "aws-cli/2.15.0" - hostid= SigV4 TLS_AES_128_GCM_SHA256 AuthHeader ml.s3.us-east-1.amazonaws.com TLSv1.3 - -`+"\n"), 0o600)
	var res []ingestFileResult
	json.Unmarshal([]byte(admin.must("audit", "ingest", "--format", "s3-access-log", file, "--json")), &res)
	if len(res) != 1 || res[0].Events != 2 || res[0].Stored != 2 || res[0].Skipped != 1 {
		t.Errorf("ingest: %s, want 2 events stored, 1 skipped", mustJSON(res))
	}
	// Again, from stdin, with one more line: only that one is new.
	again := admin
	again.stdin = strings.NewReader(line("REQ1", "192.0.2.10", "200", "1048576") + "\n" + line("REQ4", "192.0.2.11", "206", "100") + "\n")
	res = nil
	json.Unmarshal([]byte(again.must("audit", "ingest", "--format", "s3-access-log", "-", "--json")), &res)
	if len(res) != 1 || res[0].Events != 2 || res[0].Stored != 1 {
		t.Errorf("re-import: %s, want 2 events, 1 stored", mustJSON(res))
	}

	var grants []*signet.GrantUsage
	json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", "--json")), &grants)
	g := byGrant(grants)
	if u := g[grant]; u == nil || u.Uses != 2 || u.Failed != 1 || u.BytesSent != 1048576+243+100 ||
		addrList(u) != "192.0.2.10,192.0.2.11,198.51.100.3" {
		t.Errorf("used grant: %s", mustJSON(g[grant]))
	}
	if u := g[unused]; u == nil || u.Used {
		t.Errorf("unused grant: %s", mustJSON(g[unused]))
	}

	// MinIO audit entries from a file, one per line.
	entries := filepath.Join(dir, "minio.jsonl")
	os.WriteFile(entries, []byte(`{"version":"1","time":"2026-11-27T09:50:00Z","trigger":"incoming","api":{"name":"GetObject","bucket":"ml","object":"a.bin","statusCode":200,"rx":0,"tx":5},"remotehost":"192.0.2.50","requestID":"M1","requestQuery":{"X-Amz-Signature":"abc123","x-signet-grant":"`+grant+`"}}`+"\n"+
		`{"version":"1","time":"2026-11-27T09:50:01Z","trigger":"incoming","api":{"name":"ListBuckets","statusCode":200},"remotehost":"192.0.2.50","requestID":"M2"}`+"\n"), 0o600)
	res = nil
	json.Unmarshal([]byte(admin.must("audit", "ingest", "--format", "minio", entries, "--json")), &res)
	if len(res) != 1 || res[0].Events != 1 || res[0].Stored != 1 || res[0].Skipped != 1 {
		t.Errorf("minio import: %s, want 1 stored, 1 skipped", mustJSON(res))
	}
	grants = nil
	json.Unmarshal([]byte(admin.must("audit", "usage", "--team", "ml", "--json")), &grants)
	if u := byGrant(grants)[grant]; u == nil || u.Uses != 3 || !strings.Contains(addrList(u), "192.0.2.50") {
		t.Errorf("after the MinIO import: %s", mustJSON(u))
	}

	// A malformed line is refused and named.
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte(line("REQ5", "192.0.2.10", "200", "1")+"\nnot an access log line\n"), 0o600)
	if r := admin.run("audit", "ingest", "--format", "s3-access-log", bad); r.code == 0 || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("malformed file: exit %d, %s", r.code, r.stderr)
	}
	if r := admin.run("audit", "ingest", bad); r.code == 0 {
		t.Errorf("ingest without --format succeeded")
	}
}

func grantOf(t *testing.T, u string) string {
	t.Helper()
	g := mustParse(t, u).Query().Get(signet.GrantParam)
	if g == "" {
		t.Fatalf("URL carries no %s", signet.GrantParam)
	}
	return g
}

// grantParam reads the grant id of a URL of the local store.
func grantParam(t *testing.T, u string) string {
	t.Helper()
	g := mustParse(t, u).Query().Get("grant")
	if g == "" {
		t.Fatalf("local URL carries no grant")
	}
	return g
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func byGrant(gs []*signet.GrantUsage) map[string]*signet.GrantUsage {
	m := make(map[string]*signet.GrantUsage)
	for _, g := range gs {
		m[g.GrantID] = g
	}
	return m
}

func addrList(g *signet.GrantUsage) string {
	var s []string
	for _, a := range g.Addresses {
		v := a.RemoteAddr
		if a.Outside {
			v += "!"
		}
		s = append(s, v)
	}
	return strings.Join(s, ",")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func readAll(t *testing.T, files ...string) []byte {
	t.Helper()
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
