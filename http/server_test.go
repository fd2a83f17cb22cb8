package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// clock is a settable clock shared by the server and the local store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real server (SQLite, local store) on httptest, with users seeded
// directly in the store.
type env struct {
	t      testing.TB
	URL    string
	DB     *sqlite.DB
	Clock  *clock
	Server *sighttp.Server
	// Secrets records the credentials each s3 connector's driver was
	// opened with, by bucket.
	Secrets *sync.Map
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	db.Now = clk.Now
	keys, err := fileblob.LoadOrCreateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	var blob *fileblob.Store
	e := &env{t: t, DB: db, Clock: clk, Secrets: new(sync.Map)}
	sealer, err := signet.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	srv := sighttp.NewServer(sighttp.Config{
		Store:  db,
		Sealer: sealer,
		// "s3" connectors are served by the local store here, so tests
		// can see which credentials reach the driver.
		Backends: func(_ context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
			switch c.Backend {
			case signet.BackendLocal:
				return blob, nil
			case signet.BackendS3:
				e.Secrets.Store(c.Bucket, secret)
				return blob, nil
			}
			return nil, signet.Errorf(signet.Unimplemented, "no backend %s", c.Backend)
		},
		Blob: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { blob.ServeHTTP(w, r) }),
		Now:  clk.Now,
	})
	e.Server = srv
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	blob, err = fileblob.Open(filepath.Join(dir, "blobs"), fileblob.Options{BaseURL: ts.URL, Keys: keys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.URL = ts.URL
	return e
}

// seed creates a team with a local connector, and returns tokens for users
// with the given roles (role "" = not a member; "instance" = instance admin).
func (e *env) seed(team string, roles ...string) map[string]string {
	e.t.Helper()
	tokens := map[string]string{}
	err := e.DB.Update(context.Background(), func(tx signet.Tx) error {
		if _, err := tx.Team(team); signet.ErrorCode(err) == signet.NotFound {
			if err := tx.CreateTeam(&signet.Team{Name: team}); err != nil {
				return err
			}
			if err := tx.SetConnector(&signet.Connector{Team: team, Backend: "local", Bucket: team}); err != nil {
				return err
			}
		}
		for _, role := range roles {
			name := fmt.Sprintf("%s-%s-%d", team, role, len(tokens))
			if role == "" {
				name = fmt.Sprintf("%s-outsider-%d", team, len(tokens))
			}
			if err := tx.CreateUser(&signet.User{Name: name, Admin: role == "instance"}); err != nil {
				return err
			}
			if role != "" && role != "instance" {
				if err := tx.SetMember(&signet.Member{Team: team, User: name, Role: signet.Role(role)}); err != nil {
					return err
				}
			}
			tok, id, hash := signet.NewAPIKeyToken()
			if err := tx.CreateAPIKey(&signet.APIKey{ID: id, User: name, Hash: hash}); err != nil {
				return err
			}
			tokens[role] = tok
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tokens
}

type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) code() string {
	var p struct{ Code string }
	json.Unmarshal(a.Body, &p)
	return p.Code
}

func (e *env) do(method, path, token, body string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// audit returns every audit event, paging through the store.
func (e *env) audit() []*signet.AuditEvent {
	e.t.Helper()
	var all []*signet.AuditEvent
	f := signet.AuditFilter{Limit: 1000}
	for {
		var evs []*signet.AuditEvent
		err := e.DB.View(context.Background(), func(tx signet.Tx) (err error) {
			evs, err = tx.Audit(f)
			return err
		})
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, evs...)
		if len(evs) < f.Limit {
			return all
		}
		f.AfterID = evs[len(evs)-1].ID
	}
}

func presignBody(op string, keys ...string) string {
	objs := make([]map[string]any, len(keys))
	for i, k := range keys {
		objs[i] = map[string]any{"key": k}
	}
	b, _ := json.Marshal(map[string]any{"operation": op, "objects": objs})
	return string(b)
}

// wantProblem checks that a is an RFC 9457 problem document with status
// and signet's stable code: Content-Type application/problem+json, and
// the members type, title, status and code.
func wantProblem(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.Status != status {
		t.Errorf("status %d, want %d (%s)", a.Status, status, truncate(a.Body))
	}
	if mt, _, err := mime.ParseMediaType(a.Header.Get("Content-Type")); err != nil || mt != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", a.Header.Get("Content-Type"))
	}
	var p struct {
		Type   *string
		Title  *string
		Status *int
		Code   *string
		Detail string
	}
	if err := json.Unmarshal(a.Body, &p); err != nil {
		t.Fatalf("problem document %s: %v", truncate(a.Body), err)
	}
	switch {
	case p.Type == nil || *p.Type == "":
		t.Errorf("problem %s: no type", a.Body)
	case p.Title == nil || *p.Title != http.StatusText(status):
		t.Errorf("problem %s: title, want %q", a.Body, http.StatusText(status))
	case p.Status == nil || *p.Status != status:
		t.Errorf("problem %s: status member, want %d", a.Body, status)
	case p.Code == nil || *p.Code != code:
		t.Errorf("problem %s: code, want %q", a.Body, code)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")
	revokedTok := e.seed("ml", "viewer")["viewer"]
	id, _, _ := signet.ParseAPIKeyToken(revokedTok)
	e.DB.Update(context.Background(), func(tx signet.Tx) error { return tx.RevokeAPIKey(id, time.Now()) })
	unknown, _, _ := signet.NewAPIKeyToken()
	good := tok["member"]
	wrongSecret := good[:len(good)-4] + "aaaa"
	if wrongSecret == good {
		wrongSecret = good[:len(good)-4] + "bbbb"
	}
	cases := map[string]func(*http.Request){
		"none":         func(r *http.Request) {},
		"wrong scheme": func(r *http.Request) { r.Header.Set("Authorization", "Basic "+good) },
		"unknown key":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+unknown) },
		"wrong secret": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+wrongSecret) },
		"revoked key":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+revokedTok) },
		"malformed":    func(r *http.Request) { r.Header.Set("Authorization", "Bearer sgt_nope") },
		"query string": func(r *http.Request) { r.URL.RawQuery = "access_token=" + good + "&token=" + good },
	}
	var first []byte
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.URL+"/v1/teams/ml/presign", strings.NewReader(presignBody("download", "a")))
			set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantProblem(t, answer{resp.StatusCode, resp.Header, b}, 401, "unauthenticated")
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
			var p map[string]any
			json.Unmarshal(b, &p)
			delete(p, "request_id")
			norm, _ := json.Marshal(p)
			if first == nil {
				first = norm
			} else if !bytes.Equal(first, norm) {
				t.Errorf("body %s differs from %s", norm, first)
			}
		})
	}
	if a := e.do("POST", "/v1/teams/ml/presign", good, presignBody("download", "a")); a.Status != 200 {
		t.Errorf("valid key: %d %s", a.Status, a.Body)
	}
}

func TestPresignBadInput(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	bad := map[string]string{
		"traversal":         "../x",
		"inner traversal":   "a/../b",
		"dot segment":       "a/./b",
		"leading slash":     "/a",
		"double slash":      "a//b",
		"empty":             "",
		"NUL":               "a\x00b",
		"newline":           "a\nb",
		"carriage return":   "a\rb",
		"C1 control":        "a\u0085b",
		"backslash":         `a\..\b`,
		"too long":          strings.Repeat("k", 1025),
		"trailing dot-dot":  "a/..",
		"only dot":          ".",
		"dot-dot":           "..",
		"trailing slash":    "a/",
		"backslash only":    `\`,
		"DEL":               "a\x7fb",
		"tab":               "a\tb",
		"escape":            "a\x1bb",
		"leading dot-dot/":  "../",
		"double dot inside": "x/../../etc/passwd",
		// Encoded traversal: never decoded by signet, but a proxy or
		// store on the way might.
		"encoded traversal":        "%2e%2e/x",
		"double-encoded traversal": "%252e%252e/x",
		"encoded slashes":          "a/%2f/b",
		"encoded NUL":              "a%00b",
	}
	for name, key := range bad {
		t.Run(name, func(t *testing.T) {
			// json.Marshal turns invalid UTF-8 into U+FFFD, so build the
			// body by hand to send the raw bytes.
			body := `{"operation":"download","objects":[{"key":"` + jsonEscapeRaw(key) + `"}]}`
			a := e.do("POST", "/v1/teams/ml/presign", tok, body)
			wantProblem(t, a, 400, "invalid_key")
			if bytes.Contains(a.Body, []byte("/blob/")) {
				t.Errorf("key %q: answer holds a URL", key)
			}
		})
	}
	// Invalid UTF-8 is refused before decoding, because encoding/json would
	// otherwise replace it and sign a different key than the one sent: the
	// whole request, with the key rule's code when the bytes are in a key
	// (docs/api.md), and the key audited byte for byte as sent.
	for _, tc := range []struct{ name, path, body, code, key string }{
		{"presign", "/v1/teams/ml/presign", "{\"operation\":\"download\",\"objects\":[{\"key\":\"a\xff\xfeb\"}]}", "invalid_key", "a\xff\xfeb"},
		{"batch", "/v1/teams/ml/presign", "{\"operation\":\"download\",\"objects\":[{\"key\":\"ok\"},{\"key\":\"\\u00e9\\ud83d\\ude42\\n\\\"\xc0\xaf/x\"}]}", "invalid_key", "é🙂\n\"\xc0\xaf/x"},
		{"upload", "/v1/teams/ml/uploads", "{\"key\":\"x/\xed\xa0\x80\",\"size\":10}", "invalid_key", "x/\xed\xa0\x80"},
		{"other field", "/v1/teams/ml/presign", "{\"operation\":\"upload\",\"objects\":[{\"key\":\"k\",\"content_type\":\"text/\xff\"}]}", "invalid", ""},
		{"member name", "/v1/teams/ml/presign", "{\"operation\":\"upload\",\"objects\":[{\"k\xffey\":\"k\"}]}", "invalid", ""},
		// An escaped lone surrogate, which encoding/json would also
		// replace with U+FFFD.
		{"lone surrogate", "/v1/teams/ml/presign", `{"operation":"download","objects":[{"key":"\ud800x"}]}`, "invalid", ""},
		{"lone surrogate upload", "/v1/teams/ml/uploads", `{"key":"x/\udc00","size":10}`, "invalid", ""},
	} {
		a := e.do("POST", tc.path, tok, tc.body)
		if a.Status != 400 || a.code() != tc.code || bytes.Contains(a.Body, []byte("/blob/")) {
			t.Errorf("invalid UTF-8 (%s): %d %s, want 400 %s and no URL", tc.name, a.Status, a.Body, tc.code)
		}
		if tc.key == "" {
			continue
		}
		evs := e.audit()
		if ev := evs[len(evs)-1]; ev.Code != signet.InvalidKey || ev.ObjectKey != tc.key {
			t.Errorf("invalid UTF-8 (%s): audited %s key %q, want invalid_key and %q", tc.name, ev.Code, ev.ObjectKey, tc.key)
		}
	}
	// Otherwise percent signs are ordinary characters: the key is signed
	// and stored literally, never decoded.
	for _, key := range []string{"100%", "a%20b", "%2e%2ex/y"} {
		a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody("upload", key))
		if a.Status != 200 {
			t.Errorf("key %q: %d %s", key, a.Status, a.Body)
			continue
		}
		var res sighttp.PresignResponse
		if err := json.Unmarshal(a.Body, &res); err != nil || res.Objects[0].Key != key || !strings.Contains(res.Objects[0].URL, "/"+strings.ReplaceAll(key, "%", "%25")+"?") {
			t.Errorf("key %q: answer %s does not address the literal key", key, a.Body)
		}
	}
	// Every refusal is on the record.
	denied := 0
	for _, ev := range e.audit() {
		if ev.Outcome == signet.OutcomeDenied && ev.Code == signet.InvalidKey {
			denied++
		}
	}
	if denied != len(bad)+3 {
		t.Errorf("%d invalid_key denials audited, want %d", denied, len(bad)+3)
	}
}

// jsonEscapeRaw escapes quotes, backslashes and control bytes for JSON
// while keeping other bytes (including invalid UTF-8) raw.
func jsonEscapeRaw(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestPresignBody(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown field", `{"operation":"download","objects":[{"key":"a"}],"bucket":"other"}`, 400, "invalid"},
		{"unknown object field", `{"operation":"download","objects":[{"key":"a","bucket":"x"}]}`, 400, "invalid"},
		{"trailing garbage", `{"operation":"download","objects":[{"key":"a"}]}xyz`, 400, "invalid"},
		{"two values", `{"operation":"download","objects":[{"key":"a"}]}{}`, 400, "invalid"},
		{"huge body", `{"operation":"download","objects":[{"key":"` + strings.Repeat("a", 10<<20) + `"}]}`, 413, "too_large"},
		{"deep nesting", deep, 400, "invalid"},
		{"bad operation", `{"operation":"delete","objects":[{"key":"a"}]}`, 400, "invalid"},
		{"no objects", `{"operation":"download","objects":[]}`, 400, "invalid"},
		{"expires 0", `{"operation":"download","objects":[{"key":"a"}],"expires_in":0}`, 400, "invalid_expiry"},
		{"expires -1", `{"operation":"download","objects":[{"key":"a"}],"expires_in":-1}`, 400, "invalid_expiry"},
		{"expires above cap", `{"operation":"download","objects":[{"key":"a"}],"expires_in":3601}`, 400, "invalid_expiry"},
		{"expires 2^63", `{"operation":"download","objects":[{"key":"a"}],"expires_in":9223372036854775808}`, 400, "invalid"},
		{"expires as string", `{"operation":"download","objects":[{"key":"a"}],"expires_in":"1h"}`, 400, "invalid"},
		{"expires fraction", `{"operation":"download","objects":[{"key":"a"}],"expires_in":1.5}`, 400, "invalid"},
		{"size on download", `{"operation":"download","objects":[{"key":"a","size":3}]}`, 400, "invalid"},
		{"negative size", `{"operation":"upload","objects":[{"key":"a","size":-1}]}`, 400, "invalid"},
		{"size above single put", `{"operation":"upload","objects":[{"key":"a","size":5368709121}]}`, 413, "too_large"},
		{"bad sha256", `{"operation":"upload","objects":[{"key":"a","sha256":"xyz"}]}`, 400, "invalid"},
		{"bad content type", `{"operation":"upload","objects":[{"key":"a","content_type":"text/plain\r\nX-Evil: 1"}]}`, 400, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, e.do("POST", "/v1/teams/ml/presign", tok, c.body), c.status, c.code)
		})
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func TestPresignExpiry(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	now := e.Clock.Now()
	a := e.do("POST", "/v1/teams/ml/presign", tok, `{"operation":"upload","objects":[{"key":"f"}],"expires_in":60}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	var resp sighttp.PresignResponse
	json.Unmarshal(a.Body, &resp)
	o := resp.Objects[0]
	if !o.ExpiresAt.Equal(now.Add(60 * time.Second)) {
		t.Errorf("expires_at %v, want %v", o.ExpiresAt, now.Add(60*time.Second))
	}
	put := func() int {
		req, _ := http.NewRequest(o.Method, o.URL, strings.NewReader("x"))
		for k, v := range o.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// expires_at is the URL's real expiry: valid one second before it,
	// refused at it.
	e.Clock.Add(59 * time.Second)
	if s := put(); s != 200 {
		t.Errorf("PUT 1 s before expires_at: %d", s)
	}
	e.Clock.Add(time.Second)
	if s := put(); s != 403 {
		t.Errorf("PUT at expires_at: %d, want 403", s)
	}

	// Defaults: downloads 1 h, uploads 24 h.
	for op, want := range map[string]time.Duration{"download": time.Hour, "upload": 24 * time.Hour} {
		a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody(op, "f"))
		var resp sighttp.PresignResponse
		json.Unmarshal(a.Body, &resp)
		if got := resp.Objects[0].ExpiresAt.Sub(e.Clock.Now()); got != want {
			t.Errorf("%s default lifetime %v, want %v", op, got, want)
		}
	}
}

func TestPresignBatch(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	keys := make([]string, sighttp.MaxBatch)
	for i := range keys {
		keys[i] = fmt.Sprintf("shard/%05d.tar", i)
	}
	keys[17] = "../escape"
	a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", keys...))
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, truncate(a.Body))
	}
	var resp sighttp.PresignResponse
	json.Unmarshal(a.Body, &resp)
	if len(resp.Objects) != len(keys) {
		t.Fatalf("%d results, want %d", len(resp.Objects), len(keys))
	}
	for i, o := range resp.Objects {
		if o.Key != keys[i] {
			t.Fatalf("result %d is for %q, want %q", i, o.Key, keys[i])
		}
		if i == 17 {
			if o.Error == nil || o.Error.Code != "invalid_key" || o.URL != "" {
				t.Errorf("bad key in batch: %+v", o)
			}
		} else if o.URL == "" || o.Error != nil {
			t.Errorf("object %d: %+v", i, o)
		}
	}
	if n := len(e.audit()); n < len(keys) {
		t.Errorf("%d audit events for a batch of %d", n, len(keys))
	}
	// One more than the maximum is refused whole.
	a = e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", append(keys, "x")...))
	if a.Status != 413 {
		t.Errorf("batch over max: %d", a.Status)
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "viewer", "member", "admin", "", "instance")
	other := e.seed("cv", "admin")["admin"]
	cases := []struct {
		who, method, path, body string
		status                  int
	}{
		{"viewer", "POST", "/v1/teams/ml/presign", presignBody("download", "a"), 200},
		{"viewer", "POST", "/v1/teams/ml/presign", presignBody("upload", "a"), 403},
		{"viewer", "POST", "/v1/teams/ml/uploads", `{"key":"a","size":10}`, 403},
		{"member", "POST", "/v1/teams/ml/presign", presignBody("upload", "a"), 200},
		{"member", "PUT", "/v1/teams/ml/connector", `{"backend":"local"}`, 403},
		{"member", "POST", "/v1/teams/ml/members", `{"user":"ml-viewer-0","role":"admin"}`, 403},
		{"member", "PATCH", "/v1/teams/ml", `{"download_max_expiry":60}`, 403},
		{"member", "GET", "/v1/audit", "", 403},
		{"member", "POST", "/v1/teams", `{"name":"x"}`, 403},
		{"member", "POST", "/v1/users", `{"name":"x"}`, 403},
		{"", "POST", "/v1/teams/ml/presign", presignBody("download", "a"), 403},
		{"", "POST", "/v1/teams/nosuchteam/presign", presignBody("download", "a"), 403},
		{"admin", "PATCH", "/v1/teams/ml", `{"download_max_expiry":60}`, 200},
		{"admin", "PATCH", "/v1/teams/ml", `{"download_max_expiry":1800}`, 403},
		{"admin", "PATCH", "/v1/teams/ml", `{"download_max_expiry":7200}`, 400},
		{"admin", "PUT", "/v1/teams/ml/connector", `{"backend":"local","prefix":"p/"}`, 200},
		{"admin", "POST", "/v1/teams/cv/presign", presignBody("download", "a"), 403},
		{"instance", "PATCH", "/v1/teams/ml", `{"download_max_expiry":1800}`, 200},
		{"instance", "POST", "/v1/teams/nosuchteam/presign", presignBody("download", "a"), 404},
	}
	for _, c := range cases {
		t.Run(c.who+" "+c.method+" "+c.path, func(t *testing.T) {
			a := e.do(c.method, c.path, tok[c.who], c.body)
			if a.Status != c.status {
				t.Errorf("%d %s, want %d", a.Status, a.Body, c.status)
			}
		})
	}
	// A team admin cannot point the connector at another team's data, nor
	// at a bucket of the built-in store that another team may take later
	// (its URLs, signed with the server's keys, would then reach that
	// team's objects), nor learn which buckets are taken.
	for _, bucket := range []string{"ml", "t3", "shared"} {
		if a := e.do("PUT", "/v1/teams/cv/connector", other, `{"backend":"local","bucket":"`+bucket+`"}`); a.Status != 403 {
			t.Errorf("team admin, local bucket %q: %d %s, want 403", bucket, a.Status, a.Body)
		}
	}
	if a := e.do("PUT", "/v1/teams/cv/connector", other, `{"backend":"local","bucket":"cv","prefix":"q/"}`); a.Status != 200 {
		t.Errorf("team admin, the team's own local bucket: %d %s, want 200", a.Status, a.Body)
	}
	// Instance admins may choose the bucket, and still not overlap.
	if a := e.do("PUT", "/v1/teams/cv/connector", tok["instance"], `{"backend":"local","bucket":"ml"}`); a.Status != 409 {
		t.Errorf("instance admin, overlapping connector: %d %s, want 409", a.Status, a.Body)
	}
	denials := 0
	for _, ev := range e.audit() {
		if ev.Outcome == signet.OutcomeDenied && ev.Code == signet.PermissionDenied {
			denials++
		}
	}
	if denials < 10 {
		t.Errorf("only %d permission denials audited", denials)
	}
}

func TestUploads(t *testing.T) {
	e := newEnv(t)
	ml := e.seed("ml", "member")["member"]
	cv := e.seed("cv", "member")["member"]
	a := e.do("POST", "/v1/teams/ml/uploads", ml, `{"key":"big","size":12582912,"part_size":5242880}`)
	if a.Status != 201 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	var up sighttp.UploadInfo
	json.Unmarshal(a.Body, &up)
	if up.PartCount != 3 || up.PartSize != 5<<20 {
		t.Errorf("upload %+v", up)
	}
	base := "/v1/teams/ml/uploads/" + up.ID
	for _, nums := range []string{`[0]`, `[4]`, `[10001]`, `[-1]`, `[1.5]`, `["1"]`, `[]`} {
		a := e.do("POST", base+"/parts", ml, `{"numbers":`+nums+`}`)
		if a.Status != 400 {
			t.Errorf("numbers %s: %d %s", nums, a.Status, a.Body)
		}
	}
	// Another team's member cannot see, extend, complete or abort it.
	other := "/v1/teams/cv/uploads/" + up.ID
	for _, c := range []struct{ method, path, body string }{
		{"GET", other, ""},
		{"POST", other + "/parts", `{"numbers":[1]}`},
		{"POST", other + "/complete", `{"parts":[{"number":1,"etag":"x"}]}`},
		{"DELETE", other, ""},
		{"GET", "/v1/teams/ml/uploads/inventedid", ""},
	} {
		tok := cv
		if strings.HasPrefix(c.path, "/v1/teams/ml/") {
			tok = ml
		}
		if a := e.do(c.method, c.path, tok, c.body); a.Status != 404 {
			t.Errorf("%s %s: %d %s, want 404", c.method, c.path, a.Status, a.Body)
		}
	}
	// Upload every part and complete.
	a = e.do("POST", base+"/parts", ml, `{"numbers":[1,2,3]}`)
	var parts sighttp.PartsResponse
	json.Unmarshal(a.Body, &parts)
	var complete []sighttp.CompletePart
	var all []byte
	for _, p := range parts.Parts {
		data := bytes.Repeat([]byte{byte('a' + p.Number)}, int(p.Size))
		all = append(all, data...)
		req, _ := http.NewRequest(p.Method, p.URL, bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("part %d: %s", p.Number, resp.Status)
		}
		complete = append(complete, sighttp.CompletePart{Number: p.Number, ETag: resp.Header.Get("ETag")})
	}
	a = e.do("GET", base, ml, "")
	var state sighttp.UploadInfo
	json.Unmarshal(a.Body, &state)
	if len(state.Parts) != 3 {
		t.Errorf("state lists %d parts, want 3", len(state.Parts))
	}
	b, _ := json.Marshal(sighttp.CompleteRequest{Parts: complete})
	if a := e.do("POST", base+"/complete", ml, string(b)); a.Status != 200 {
		t.Fatalf("complete: %d %s", a.Status, a.Body)
	}
	a = e.do("POST", "/v1/teams/ml/presign", ml, presignBody("download", "big"))
	var resp sighttp.PresignResponse
	json.Unmarshal(a.Body, &resp)
	r, err := http.Get(resp.Objects[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Equal(got, all) {
		t.Errorf("assembled object differs: %d bytes, want %d", len(got), len(all))
	}
	if a := e.do("POST", base+"/complete", ml, string(b)); a.Status != 409 {
		t.Errorf("second complete: %d, want 409", a.Status)
	}
	// Too large for the store.
	if a := e.do("POST", "/v1/teams/ml/uploads", ml, `{"key":"huge","size":6597069766657}`); a.Status != 413 {
		t.Errorf("6 TiB upload: %d %s, want 413", a.Status, a.Body)
	}
}

// TestAuditFailClosed: when the audit record cannot be written, no URL is
// issued and the answer is 503 with Retry-After; service resumes when the
// store does.
func TestAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	e.DB.WriteTimeout = 300 * time.Millisecond
	release := lockDatabase(t, e.DB.Path())
	a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "a"))
	if a.Status != 503 || a.Header.Get("Retry-After") == "" || a.code() != "unavailable" {
		t.Errorf("presign with audit store locked: %d %s", a.Status, a.Body)
	}
	if bytes.Contains(a.Body, []byte("/blob/")) {
		t.Error("answer holds a URL although nothing was recorded")
	}
	if a := e.do("GET", "/readyz", "", ""); a.Status != 503 {
		t.Errorf("readyz with audit store locked: %d, want 503", a.Status)
	}
	release()
	if a := e.do("GET", "/readyz", "", ""); a.Status != 200 {
		t.Errorf("readyz after the store returned: %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "a")); a.Status != 200 {
		t.Errorf("after the store returned: %d %s", a.Status, a.Body)
	}
}

func TestConnectorCredentials(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "admin", "member", "instance")
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	body := `{"backend":"s3","bucket":"mlbucket","prefix":"ml/","credentials":{"access_key_id":"AKIAEXAMPLE","secret_access_key":"` + secret + `"}}`
	// A team admin may not hand the team the server's own credentials.
	if a := e.do("PUT", "/v1/teams/ml/connector", tok["admin"], `{"backend":"s3","bucket":"anybucket"}`); a.Status != 403 {
		t.Errorf("ambient connector by team admin: %d %s, want 403", a.Status, a.Body)
	}
	if a := e.do("PUT", "/v1/teams/ml/connector", tok["instance"], `{"backend":"local","credentials":{"k":"v"}}`); a.Status != 400 {
		t.Errorf("credentials for local: %d, want 400", a.Status)
	}
	a := e.do("PUT", "/v1/teams/ml/connector", tok["admin"], body)
	if a.Status != 200 || bytes.Contains(a.Body, []byte(secret)) {
		t.Fatalf("set connector: %d %s", a.Status, a.Body)
	}
	get := e.do("GET", "/v1/teams/ml/connector", tok["member"], "")
	var c signet.Connector
	json.Unmarshal(get.Body, &c)
	if c.CredentialsRef == "" || bytes.Contains(get.Body, []byte(secret)) || bytes.Contains(get.Body, []byte("AKIAEXAMPLE")) {
		t.Errorf("connector shows %s", get.Body)
	}
	// Signing opens the sealed credentials and hands them to the driver.
	e.Secrets.Clear()
	if a := e.do("POST", "/v1/teams/ml/presign", tok["member"], presignBody("download", "x")); a.Status != 200 {
		t.Fatalf("presign: %d %s", a.Status, a.Body)
	}
	got, _ := e.Secrets.Load("mlbucket")
	if m, _ := got.(map[string]string); m["secret_access_key"] != secret || m["access_key_id"] != "AKIAEXAMPLE" {
		t.Errorf("driver opened with %v", got)
	}
	// The database holds them sealed only, and no audit record holds them.
	var raw []byte
	e.DB.View(context.Background(), func(tx signet.Tx) error {
		cr, err := tx.Credential(c.CredentialsRef)
		if err == nil {
			raw = cr.Sealed
		}
		return err
	})
	if len(raw) == 0 || bytes.Contains(raw, []byte(secret)) {
		t.Errorf("stored credential is not sealed: %q", raw)
	}
	for _, ev := range e.audit() {
		b, _ := json.Marshal(ev)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("audit event holds the secret: %s", b)
		}
	}
}

// TestTeamCapsOnlyLower: R3's per-team limits only lower the defaults (1 h
// downloads, 24 h uploads); nobody, not even an instance admin, can raise
// a team's cap above them.
func TestTeamCapsOnlyLower(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "admin", "instance")
	for _, tc := range []struct {
		who, body string
		status    int
		code      string
	}{
		{"instance", `{"download_max_expiry":3601}`, 400, "invalid_expiry"},
		{"instance", `{"download_max_expiry":7200}`, 400, "invalid_expiry"},
		{"instance", `{"upload_max_expiry":86401}`, 400, "invalid_expiry"},
		{"instance", `{"upload_max_expiry":604800}`, 400, "invalid_expiry"},
		{"admin", `{"upload_max_expiry":90000}`, 400, "invalid_expiry"},
		{"instance", `{"download_max_expiry":0}`, 400, "invalid_expiry"},
		{"instance", `{"download_max_expiry":3600,"upload_max_expiry":86400}`, 200, ""},
		{"admin", `{"download_max_expiry":600,"upload_max_expiry":7200}`, 200, ""},
		{"admin", `{"download_max_expiry":1200}`, 403, "permission_denied"},
		{"instance", `{"download_max_expiry":1200}`, 200, ""},
	} {
		a := e.do("PATCH", "/v1/teams/ml", tok[tc.who], tc.body)
		if a.Status != tc.status || a.code() != tc.code {
			t.Errorf("%s sets %s: %d %s, want %d %s", tc.who, tc.body, a.Status, a.Body, tc.status, tc.code)
		}
	}
	var info sighttp.TeamInfo
	if a := e.do("GET", "/v1/teams/ml", tok["admin"], ""); json.Unmarshal(a.Body, &info) != nil || info.DownloadMaxExpiry != 1200 || info.UploadMaxExpiry != 7200 {
		t.Errorf("team %+v, want caps 1200 and 7200", info)
	}
	// The message says why and what the limit is.
	a := e.do("PATCH", "/v1/teams/ml", tok["instance"], `{"download_max_expiry":7200}`)
	if !bytes.Contains(a.Body, []byte("3600")) || !bytes.Contains(a.Body, []byte("only lower")) {
		t.Errorf("refusal %s does not state the default", a.Body)
	}
}

// TestSetConnectorOrder: the caller's role is checked before the body is
// judged, so whoever may not manage the team gets 403 whatever they send,
// and nothing is sealed or opened for them; then the backend name is
// checked before the settings that depend on it.
func TestSetConnectorOrder(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "viewer", "member", "", "admin")
	creds := `"credentials":{"access_key_id":"AKIAEXAMPLE","secret_access_key":"s3cr3t"}`
	for _, who := range []string{"viewer", "member", ""} {
		for _, body := range []string{
			`{"backend":"local","prefix":"../"}`,
			`{"backend":"local","prefix":"no-slash"}`,
			`{"backend":"nosuch"}`,
			`{"backend":"s3","bucket":"sealme",` + creds + `}`,
			`{"backend":"local","bogus":1}`,
			`not json`,
		} {
			a := e.do("PUT", "/v1/teams/ml/connector", tok[who], body)
			if a.Status != 403 || a.code() != "permission_denied" {
				t.Errorf("%q sends %s: %d %s, want 403 permission_denied", who, body, a.Status, a.Body)
			}
		}
	}
	if _, opened := e.Secrets.Load("sealme"); opened {
		t.Error("a refused caller's credentials reached a driver")
	}
	for _, tc := range []struct{ body, want string }{
		{`{"backend":"nosuch"}`, `unknown backend "nosuch"`},
		{`{"backend":"nosuch","bucket":"b","prefix":"../"}`, `unknown backend "nosuch"`},
		{`{"bucket":"b"}`, "backend is required"},
	} {
		a := e.do("PUT", "/v1/teams/ml/connector", tok["admin"], tc.body)
		var p sighttp.Problem
		json.Unmarshal(a.Body, &p)
		if a.Status != 400 || p.Code != "invalid" || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("admin sends %s: %d %s, want 400 invalid %q", tc.body, a.Status, a.Body, tc.want)
		}
	}
	if a := e.do("PUT", "/v1/teams/ml/connector", tok["admin"], `{"backend":"local","prefix":"p/"}`); a.Status != 200 {
		t.Errorf("valid connector: %d %s", a.Status, a.Body)
	}
}

func TestSweepExpiredUploads(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	a := e.do("POST", "/v1/teams/ml/uploads", tok, `{"key":"abandoned","size":12582912,"part_size":5242880}`)
	var up sighttp.UploadInfo
	json.Unmarshal(a.Body, &up)
	a = e.do("POST", "/v1/teams/ml/uploads/"+up.ID+"/parts", tok, `{"numbers":[1]}`)
	var parts sighttp.PartsResponse
	json.Unmarshal(a.Body, &parts)
	if !parts.Parts[0].ExpiresAt.Equal(e.Clock.Now().Add(sighttp.PartURLLifetime)) {
		t.Errorf("part URL expires %v, want %v after issue", parts.Parts[0].ExpiresAt, sighttp.PartURLLifetime)
	}
	req, _ := http.NewRequest("PUT", parts.Parts[0].URL, bytes.NewReader(make([]byte, 5<<20)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("part PUT: %v %v", resp, err)
	}
	// A session still within its deadline is left alone.
	if n, err := e.Server.Sweep(context.Background()); n != 0 || err != nil {
		t.Fatalf("early sweep collected %d, %v", n, err)
	}
	e.Clock.Add(24*time.Hour + time.Second)
	if n, err := e.Server.Sweep(context.Background()); n != 1 || err != nil {
		t.Fatalf("sweep collected %d, %v; want 1", n, err)
	}
	var state sighttp.UploadInfo
	json.Unmarshal(e.do("GET", "/v1/teams/ml/uploads/"+up.ID, tok, "").Body, &state)
	if state.State != signet.UploadAborted {
		t.Errorf("state after sweep: %q", state.State)
	}
	// Nothing is left at the store: the part's file is gone.
	if a := e.do("POST", "/v1/teams/ml/uploads/"+up.ID+"/parts", tok, `{"numbers":[2]}`); a.Status != 409 {
		t.Errorf("parts for a swept session: %d, want 409", a.Status)
	}
	req, _ = http.NewRequest("PUT", parts.Parts[0].URL, bytes.NewReader(make([]byte, 5<<20)))
	e.Clock.Add(-24 * time.Hour) // the URL itself would still be valid
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Errorf("part PUT into a swept session: %v %v, want 404", resp.Status, err)
	}
	found := false
	for _, ev := range e.audit() {
		if ev.Action == signet.ActionUploadExpire && ev.UploadID == up.ID && ev.ActorUser == "signet" {
			found = true
		}
	}
	if !found {
		t.Error("the sweep is not audited")
	}
	if n, _ := e.Server.Sweep(context.Background()); n != 0 {
		t.Errorf("second sweep collected %d again", n)
	}
}

// TestPresignHeaders: every issued URL states the headers to send, {}
// when there are none (DESIGN §4); a refused object carries none.
func TestPresignHeaders(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	items := func(a answer) []map[string]json.RawMessage {
		t.Helper()
		var res struct{ Objects, Parts []map[string]json.RawMessage }
		if a.Status != 200 && a.Status != 201 || json.Unmarshal(a.Body, &res) != nil {
			t.Fatalf("%d %s", a.Status, truncate(a.Body))
		}
		return append(res.Objects, res.Parts...)
	}
	objs := items(e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "a", "../x")))
	if h, ok := objs[0]["headers"]; !ok || string(h) != "{}" {
		t.Errorf("download: headers %s (present %v), want {}", h, ok)
	}
	if h, ok := objs[1]["headers"]; ok {
		t.Errorf("refused object: headers %s, want none", h)
	}
	objs = items(e.do("POST", "/v1/teams/ml/presign", tok, `{"operation":"upload","objects":[{"key":"a","content_type":"text/plain"}]}`))
	if h := string(objs[0]["headers"]); h != `{"Content-Type":"text/plain"}` {
		t.Errorf("upload: headers %s", h)
	}
	up := e.do("POST", "/v1/teams/ml/uploads", tok, `{"key":"big","size":10}`)
	var info struct{ ID string }
	if up.Status != 201 || json.Unmarshal(up.Body, &info) != nil {
		t.Fatalf("upload: %d %s", up.Status, up.Body)
	}
	for _, p := range items(e.do("POST", "/v1/teams/ml/uploads/"+info.ID+"/parts", tok, `{"numbers":[1]}`)) {
		if _, ok := p["headers"]; !ok {
			t.Errorf("part %s: no headers", p["number"])
		}
	}
}

// TestRefusedKeyAudit: the audit record of a refused key holds the key
// exactly as the client sent it, not joined to the connector's prefix
// (which would read as an object that the key could have named); an
// issued one holds the full key in the bucket.
func TestRefusedKeyAudit(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	err := e.DB.Update(context.Background(), func(tx signet.Tx) error {
		return tx.SetConnector(&signet.Connector{Team: "ml", Backend: "local", Bucket: "ml", Prefix: "runs/"})
	})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", 1020) // valid alone, too long under "runs/"
	e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "ok", "../etc/passwd", "%2e%2e/x", long))
	e.do("POST", "/v1/teams/ml/uploads", tok, `{"key":"a//b","size":10}`)
	e.do("POST", "/v1/teams/ml/uploads", tok, `{"key":"`+long+`","size":10}`)
	got := map[string]string{}
	for _, ev := range e.audit() {
		if ev.Action == signet.ActionPresignDownload || ev.Action == signet.ActionUploadCreate {
			got[ev.ObjectKey] = string(ev.Code)
		}
	}
	want := map[string]string{
		"runs/ok":       "",
		"../etc/passwd": "invalid_key",
		"%2e%2e/x":      "invalid_key",
		long:            "invalid_key",
		"a//b":          "invalid_key",
	}
	if len(got) != len(want) {
		t.Errorf("audited keys %v, want %v", got, want)
	}
	for k, code := range want {
		if c, ok := got[k]; !ok || c != code {
			t.Errorf("key %.40q: audited %v (code %q), want code %q", k, ok, c, code)
		}
	}
}
