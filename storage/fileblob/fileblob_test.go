package fileblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/storage/storagetest"
)

const baseURL = "http://blob.test"

var (
	key1 = fileblob.Key{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}
	key2 = fileblob.Key{ID: "k2", Secret: bytes.Repeat([]byte{2}, 32)}
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is a store under test with a bucket view for team "t".
type env struct {
	t     *testing.T
	dir   string // the store's root
	store *fileblob.Store
	clock *clock
	b     *storage.Bucket
}

// MustOpen opens a store in a new temporary directory.
func MustOpen(t *testing.T, opts fileblob.Options) *env {
	t.Helper()
	dir := t.TempDir()
	return mustOpenAt(t, dir, opts)
}

func mustOpenAt(t *testing.T, dir string, opts fileblob.Options) *env {
	t.Helper()
	e := &env{t: t, dir: dir, clock: newClock()}
	if opts.BaseURL == "" {
		opts.BaseURL = baseURL
	}
	if opts.Keys == nil {
		opts.Keys = []fileblob.Key{key1}
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	s, err := fileblob.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.store = s
	e.b = storage.Open(s, &signet.Connector{Backend: signet.BackendLocal, Bucket: "bkt", Prefix: "team/"})
	return e
}

// sign signs method on key with edit applied, valid for an hour.
func (e *env) sign(method, key string, edit func(*driver.SignOptions)) *driver.SignedURL {
	e.t.Helper()
	now := e.clock.Now()
	o := &driver.SignOptions{Method: method, Now: now, Expires: now.Add(time.Hour), Size: -1}
	if edit != nil {
		edit(o)
	}
	u, err := e.b.SignedURL(context.Background(), key, o)
	if err != nil {
		e.t.Fatalf("signing %s %s: %v", method, key, err)
	}
	return u
}

// do serves one request to the store. A body of nil sends none; size -1
// sends the body chunked (unknown length).
func (e *env) do(method, target string, header map[string]string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doFrom("192.0.2.1:1234", method, target, header, body, int64(len(body)))
}

func (e *env) doFrom(remote, method, target string, header map[string]string, body []byte, length int64) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.RemoteAddr = remote
	req.ContentLength = length
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.store.ServeHTTP(w, req)
	return w
}

// put stores body at key (relative to the team's space).
func (e *env) put(key string, body []byte) {
	e.t.Helper()
	u := e.sign(http.MethodPut, key, nil)
	if w := e.do(http.MethodPut, u.URL, u.Headers, body); w.Code != http.StatusOK {
		e.t.Fatalf("PUT %s: %d %s", key, w.Code, w.Body)
	}
}

// snapshot returns every path below dir with its content (or link target).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "link:" + target
		case d.IsDir():
			m[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// problem decodes a problem+json answer.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) problem {
	t.Helper()
	var p problem
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error answer has Content-Type %q", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Errorf("error answer is not JSON: %v: %s", err, w.Body)
	}
	if p.Type != "about:blank" || p.Status != w.Code || p.Title == "" || p.Code == "" {
		t.Errorf("malformed problem %+v for status %d", p, w.Code)
	}
	return p
}

func wantProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status %d (%s), want %d", w.Code, w.Body, status)
		return
	}
	if p := decodeProblem(t, w); p.Code != code {
		t.Errorf("problem code %q (%s), want %q", p.Code, p.Detail, code)
	}
}

func TestConformance(t *testing.T) {
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	store, err := fileblob.Open(t.TempDir(), fileblob.Options{BaseURL: srv.URL, Keys: []fileblob.Key{key1}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mux := http.NewServeMux()
	mux.Handle("/blob/", store)
	handler = mux
	storagetest.Run(t, &storagetest.Harness{
		Backend:           store,
		Name:              signet.BackendLocal,
		Bucket:            "conformance",
		Prefix:            "team/",
		Client:            srv.Client(),
		Multipart:         true,
		BindsContentType:  true,
		BindsSize:         true,
		BindsChecksum:     true,
		BindsClientPrefix: true,
	})
}

func TestPutGet(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	body := []byte("hello, world")
	u := e.sign(http.MethodPut, "dir/%2e%2ex/file.txt", func(o *driver.SignOptions) { o.ContentType = "text/plain" })
	if !strings.HasPrefix(u.URL, baseURL+"/blob/bkt/team/dir/%252e%252ex/file.txt?") {
		t.Errorf("URL %s does not address the literal key", u.URL)
	}
	w := e.do(http.MethodPut, u.URL, u.Headers, body)
	if w.Code != http.StatusOK || w.Header().Get("ETag") == "" {
		t.Fatalf("PUT: %d %s, ETag %q", w.Code, w.Body, w.Header().Get("ETag"))
	}
	etag := w.Header().Get("ETag")
	// The key is stored literally, inside the bucket directory.
	if _, err := os.Stat(filepath.Join(e.dir, "objects", "bkt", "team", "dir", "%2e%2ex", "file.txt")); err != nil {
		t.Errorf("object not stored at its literal key: %v", err)
	}

	t.Run("OK", func(t *testing.T) {
		g := e.sign(http.MethodGet, "dir/%2e%2ex/file.txt", nil)
		w := e.do(http.MethodGet, g.URL, nil, nil)
		if w.Code != http.StatusOK || w.Body.String() != string(body) {
			t.Errorf("GET: %d %q", w.Code, w.Body)
		}
		h := w.Header()
		if h.Get("Content-Type") != "text/plain" || h.Get("ETag") != etag || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") == "" {
			t.Errorf("GET headers %v", h)
		}
	})
	t.Run("Range", func(t *testing.T) {
		g := e.sign(http.MethodGet, "dir/%2e%2ex/file.txt", nil)
		w := e.do(http.MethodGet, g.URL, map[string]string{"Range": "bytes=7-"}, nil)
		if w.Code != http.StatusPartialContent || w.Body.String() != "world" {
			t.Errorf("ranged GET: %d %q", w.Code, w.Body)
		}
		w = e.do(http.MethodGet, g.URL, map[string]string{"If-None-Match": etag}, nil)
		if w.Code != http.StatusNotModified {
			t.Errorf("conditional GET: %d", w.Code)
		}
	})
	t.Run("Head", func(t *testing.T) {
		g := e.sign(http.MethodHead, "dir/%2e%2ex/file.txt", nil)
		w := e.do(http.MethodHead, g.URL, nil, nil)
		if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "12" {
			t.Errorf("HEAD: %d, %d bytes, length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
		}
		// Exact method only: a GET URL does not allow HEAD and vice versa.
		g2 := e.sign(http.MethodGet, "dir/%2e%2ex/file.txt", nil)
		wantProblem(t, e.do(http.MethodHead, g2.URL, nil, nil), http.StatusForbidden, "method_not_allowed")
		wantProblem(t, e.do(http.MethodGet, g.URL, nil, nil), http.StatusForbidden, "method_not_allowed")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		g := e.sign(http.MethodGet, "dir/missing", nil)
		wantProblem(t, e.do(http.MethodGet, g.URL, nil, nil), http.StatusNotFound, "not_found")
		// A folder is not an object.
		g = e.sign(http.MethodGet, "dir", nil)
		wantProblem(t, e.do(http.MethodGet, g.URL, nil, nil), http.StatusNotFound, "not_found")
	})
	t.Run("Overwrite", func(t *testing.T) {
		e.put("dir/%2e%2ex/file.txt", []byte("new"))
		g := e.sign(http.MethodGet, "dir/%2e%2ex/file.txt", nil)
		w := e.do(http.MethodGet, g.URL, nil, nil)
		if w.Body.String() != "new" || w.Header().Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET after overwrite: %q, %q", w.Body, w.Header().Get("Content-Type"))
		}
	})
}

func TestUnboundContentType(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	u := e.sign(http.MethodPut, "a.json", nil)
	w := e.do(http.MethodPut, u.URL, map[string]string{"Content-Type": "application/json"}, []byte("{}"))
	if w.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	g := e.sign(http.MethodGet, "a.json", nil)
	if ct := e.do(http.MethodGet, g.URL, nil, nil).Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	u = e.sign(http.MethodPut, "b", nil)
	wantProblem(t, e.do(http.MethodPut, u.URL, map[string]string{"Content-Type": "not a type"}, []byte("x")), http.StatusBadRequest, "invalid_content_type")
}

// TestTamper changes each signed value of a URL, one at a time: the store
// answers 403 and touches no file.
func TestTamper(t *testing.T) {
	e := MustOpen(t, fileblob.Options{Keys: []fileblob.Key{key1, key2}})
	e.put("victim", []byte("original"))
	sum := sha256.Sum256([]byte("payload"))
	ctx := context.Background()
	upload, err := e.b.CreateMultipart(ctx, "victim", &driver.MultipartOptions{Size: 7, PartSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.b.CreateMultipart(ctx, "victim", &driver.MultipartOptions{Size: 7, PartSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	e.put("other", []byte("other"))

	full := func(o *driver.SignOptions) {
		o.Size = 7
		o.ContentType = "text/plain"
		o.SHA256 = sum[:]
		o.ClientPrefix = netip.MustParsePrefix("192.0.2.0/24")
		o.GrantID = "grant1"
	}
	part := func(o *driver.SignOptions) {
		full(o)
		o.UploadID, o.PartNumber = upload, 1
	}
	type tamper struct {
		name   string
		method string // request method; "" for the signed one
		edit   func(u *url.URL, q url.Values)
	}
	set := func(k, v string) func(*url.URL, url.Values) {
		return func(_ *url.URL, q url.Values) { q.Set(k, v) }
	}
	del := func(k string) func(*url.URL, url.Values) {
		return func(_ *url.URL, q url.Values) { q.Del(k) }
	}
	flip := func(first bool) func(*url.URL, url.Values) {
		return func(_ *url.URL, q url.Values) {
			s := []byte(q.Get("sig"))
			i := len(s) - 1
			if first {
				i = 0
			}
			if s[i] == 'A' {
				s[i] = 'B'
			} else {
				s[i] = 'A'
			}
			q.Set("sig", string(s))
		}
	}
	common := []tamper{
		{"Key", "", func(u *url.URL, _ url.Values) { u.Path = "/blob/bkt/team/other" }},
		{"KeyPrefix", "", func(u *url.URL, _ url.Values) { u.Path = "/blob/bkt/victim" }},
		{"Bucket", "", func(u *url.URL, _ url.Values) { u.Path = "/blob/bkt2/team/victim" }},
		{"Method", "GET", set("method", "GET")},
		{"RequestMethod", "GET", nil},
		{"ExpiryLater", "", set("expires", "1999999999")},
		{"ExpiryLeadingZero", "", func(_ *url.URL, q url.Values) { q.Set("expires", "0"+q.Get("expires")) }},
		{"SizeChanged", "", set("size", "8")},
		{"SizeRemoved", "", del("size")},
		{"TypeChanged", "", set("type", "text/html")},
		{"TypeRemoved", "", del("type")},
		{"SHA256Changed", "", set("sha256", strings.Repeat("0", 64))},
		{"SHA256Upper", "", func(_ *url.URL, q url.Values) { q.Set("sha256", strings.ToUpper(q.Get("sha256"))) }},
		{"SHA256Removed", "", del("sha256")},
		{"KeyIDOther", "", set("kid", "k2")},
		{"KeyIDUnknown", "", set("kid", "k3")},
		{"KeyIDRemoved", "", del("kid")},
		{"GrantChanged", "", set("grant", "grant2")},
		{"GrantRemoved", "", del("grant")},
		{"ClientPrefixWidened", "", set("ip", "0.0.0.0/0")},
		{"ClientPrefixRemoved", "", del("ip")},
		{"SignatureFirst", "", flip(true)},
		{"SignatureLast", "", flip(false)},
		{"SignatureTruncated", "", func(_ *url.URL, q url.Values) { q.Set("sig", q.Get("sig")[:42]) }},
		{"SignatureRemoved", "", del("sig")},
		{"SignatureRepeated", "", func(_ *url.URL, q url.Values) { q.Add("sig", q.Get("sig")) }},
		{"Version", "", set("v", "2")},
		{"UnknownParam", "", set("x-extra", "1")},
		{"PartAdded", "", func(_ *url.URL, q url.Values) { q.Set("upload", upload); q.Set("part", "1") }},
	}
	partOnly := []tamper{
		{"UploadChanged", "", set("upload", other)},
		{"UploadRemoved", "", func(_ *url.URL, q url.Values) { q.Del("upload"); q.Del("part") }},
		{"PartChanged", "", set("part", "2")},
		{"PartLeadingZero", "", set("part", "01")},
		{"PartRemoved", "", del("part")},
	}
	cases := []struct {
		name    string
		edit    func(*driver.SignOptions)
		tampers []tamper
	}{
		{"Object", full, common},
		{"Part", part, append(common[:len(common)-1:len(common)-1], partOnly...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range c.tampers {
				t.Run(tc.name, func(t *testing.T) {
					u := e.sign(http.MethodPut, "victim", c.edit)
					pu, _ := url.Parse(u.URL)
					q := pu.Query()
					if tc.edit != nil {
						tc.edit(pu, q)
					}
					pu.RawQuery = q.Encode()
					method := http.MethodPut
					if tc.method != "" {
						method = tc.method
					}
					before := snapshot(t, e.dir)
					w := e.doFrom("192.0.2.9:1", method, pu.String(), u.Headers, []byte("payload"), 7)
					if w.Code != http.StatusForbidden {
						t.Errorf("status %d (%s), want 403", w.Code, w.Body)
					}
					p := decodeProblem(t, w)
					if sig := q.Get("sig"); sig != "" && strings.Contains(w.Body.String(), sig) {
						t.Errorf("problem detail holds the signature: %+v", p)
					}
					if !sameTree(before, snapshot(t, e.dir)) {
						t.Error("a refused request changed the store's files")
					}
				})
			}
			// Control: the untampered URL works.
			u := e.sign(http.MethodPut, "victim", c.edit)
			if w := e.doFrom("192.0.2.9:1", http.MethodPut, u.URL, u.Headers, []byte("payload"), 7); w.Code != http.StatusOK {
				t.Errorf("untampered URL: %d %s", w.Code, w.Body)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	e.put("x", []byte("x"))
	now := e.clock.Now()
	u := e.sign(http.MethodGet, "x", func(o *driver.SignOptions) { o.Expires = now.Add(time.Minute) })
	for _, tc := range []struct {
		name string
		at   time.Time
		code int
	}{
		{"OK", now.Add(time.Minute - time.Nanosecond), http.StatusOK},
		{"ErrAtExpiry", now.Add(time.Minute), http.StatusForbidden},
		{"ErrOneSecondLate", now.Add(time.Minute + time.Second), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(tc.at)
			w := e.do(http.MethodGet, u.URL, nil, nil)
			if tc.code == http.StatusOK {
				if w.Code != http.StatusOK {
					t.Errorf("status %d (%s), want 200", w.Code, w.Body)
				}
				return
			}
			wantProblem(t, w, tc.code, "expired")
		})
	}
}

func TestSizeBinding(t *testing.T) {
	e := MustOpen(t, fileblob.Options{MaxObjectSize: 100})
	body := bytes.Repeat([]byte("a"), 10)
	for _, tc := range []struct {
		name   string
		signed int64
		body   []byte
		length int64 // declared Content-Length; -1 sends chunked
		status int
		code   string
	}{
		{"ErrLarger", 10, append(bytes.Clone(body), 'b'), 11, http.StatusRequestEntityTooLarge, "too_large"},
		{"ErrLargerChunked", 10, append(bytes.Clone(body), 'b'), -1, http.StatusRequestEntityTooLarge, "too_large"},
		{"ErrSmaller", 10, body[:9], 9, http.StatusBadRequest, "size_mismatch"},
		{"ErrSmallerChunked", 10, body[:9], -1, http.StatusBadRequest, "size_mismatch"},
		{"ErrEmpty", 10, []byte{}, 0, http.StatusBadRequest, "size_mismatch"},
		{"ErrUnboundAboveMax", -1, make([]byte, 101), 101, http.StatusRequestEntityTooLarge, "too_large"},
		{"ErrUnboundAboveMaxChunked", -1, make([]byte, 101), -1, http.StatusRequestEntityTooLarge, "too_large"},
		{"OKChunked", 10, body, -1, http.StatusOK, ""},
		{"OKEmpty", 0, []byte{}, 0, http.StatusOK, ""},
		{"OKUnboundAtMax", -1, make([]byte, 100), -1, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "size/" + tc.name
			u := e.sign(http.MethodPut, key, func(o *driver.SignOptions) { o.Size = tc.signed })
			w := e.doFrom("192.0.2.1:1", http.MethodPut, u.URL, nil, tc.body, tc.length)
			if tc.status != http.StatusOK {
				wantProblem(t, w, tc.status, tc.code)
				if _, err := os.Stat(filepath.Join(e.dir, "objects", "bkt", "team", "size", tc.name)); !os.IsNotExist(err) {
					t.Errorf("an object was left behind: %v", err)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Errorf("status %d (%s), want 200", w.Code, w.Body)
			}
		})
	}
	// Nothing is left in tmp/ either.
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers", len(entries))
	}
}

func TestContentTypeBinding(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	u := e.sign(http.MethodPut, "typed", func(o *driver.SignOptions) { o.ContentType = "image/png" })
	for name, h := range map[string]map[string]string{
		"ErrOther":   {"Content-Type": "text/html"},
		"ErrParam":   {"Content-Type": "image/png; charset=utf-8"},
		"ErrCase":    {"Content-Type": "IMAGE/PNG"},
		"ErrMissing": nil,
	} {
		t.Run(name, func(t *testing.T) {
			wantProblem(t, e.do(http.MethodPut, u.URL, h, []byte("png")), http.StatusForbidden, "content_type_mismatch")
		})
	}
	if _, err := os.Stat(filepath.Join(e.dir, "objects", "bkt", "team", "typed")); !os.IsNotExist(err) {
		t.Errorf("an object was left behind: %v", err)
	}
	if w := e.do(http.MethodPut, u.URL, u.Headers, []byte("png")); w.Code != http.StatusOK {
		t.Errorf("PUT with the signed type: %d %s", w.Code, w.Body)
	}
}

func TestChecksumBinding(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	sum := sha256.Sum256([]byte("right"))
	u := e.sign(http.MethodPut, "sum", func(o *driver.SignOptions) { o.SHA256 = sum[:] })
	wantProblem(t, e.do(http.MethodPut, u.URL, nil, []byte("wrong")), http.StatusBadRequest, "checksum_mismatch")
	if _, err := os.Stat(filepath.Join(e.dir, "objects", "bkt", "team", "sum")); !os.IsNotExist(err) {
		t.Errorf("an object was left behind: %v", err)
	}
	w := e.do(http.MethodPut, u.URL, nil, []byte("right"))
	if w.Code != http.StatusOK || w.Header().Get("ETag") != `"`+hexString(sum[:])+`"` {
		t.Errorf("PUT of the right body: %d, ETag %q", w.Code, w.Header().Get("ETag"))
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func TestClientPrefix(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	e.put("ip", []byte("x"))
	for _, tc := range []struct {
		name, prefix, remote string
		ok                   bool
	}{
		{"OKIPv4", "10.0.0.0/8", "10.1.2.3:5", true},
		{"OKMappedClient", "10.0.0.0/8", "[::ffff:10.1.2.3]:5", true},
		{"OKMappedPrefix", "::ffff:10.0.0.0/104", "10.1.2.3:5", true},
		{"OKHost", "10.1.2.3/32", "10.1.2.3:5", true},
		{"OKIPv6", "2001:db8::/32", "[2001:db8::1]:5", true},
		{"OKUnmasked", "10.9.9.9/8", "10.1.2.3:5", true},
		{"ErrOutside", "10.0.0.0/8", "192.168.0.1:5", false},
		{"ErrMappedOutside", "10.0.0.0/8", "[::ffff:192.168.0.1]:5", false},
		{"ErrIPv6Outside", "2001:db8::/32", "[2001:db9::1]:5", false},
		{"ErrFamily", "10.0.0.0/8", "[::1]:5", false},
		{"ErrNoAddress", "10.0.0.0/8", "garbage", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.sign(http.MethodGet, "ip", func(o *driver.SignOptions) { o.ClientPrefix = netip.MustParsePrefix(tc.prefix) })
			w := e.doFrom(tc.remote, http.MethodGet, u.URL, nil, nil, 0)
			if tc.ok {
				if w.Code != http.StatusOK {
					t.Errorf("status %d (%s), want 200", w.Code, w.Body)
				}
				return
			}
			wantProblem(t, w, http.StatusForbidden, "ip_not_allowed")
		})
	}
	t.Run("ClientIPFunc", func(t *testing.T) {
		e := MustOpen(t, fileblob.Options{ClientIP: func(r *http.Request) netip.Addr {
			a, _ := netip.ParseAddr(r.Header.Get("X-Test-Client"))
			return a
		}})
		e.put("ip", []byte("x"))
		u := e.sign(http.MethodGet, "ip", func(o *driver.SignOptions) { o.ClientPrefix = netip.MustParsePrefix("10.0.0.0/8") })
		if w := e.do(http.MethodGet, u.URL, map[string]string{"X-Test-Client": "10.0.0.1"}, nil); w.Code != http.StatusOK {
			t.Errorf("status %d, want 200", w.Code)
		}
		wantProblem(t, e.do(http.MethodGet, u.URL, map[string]string{"X-Test-Client": "11.0.0.1"}, nil), http.StatusForbidden, "ip_not_allowed")
	})
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	old := mustOpenAt(t, dir, fileblob.Options{Keys: []fileblob.Key{key1}})
	old.put("rot", []byte("x"))
	u := old.sign(http.MethodGet, "rot", nil)

	rotated := mustOpenAt(t, dir, fileblob.Options{Keys: []fileblob.Key{key2, key1}})
	rotated.clock = old.clock
	if w := rotated.do(http.MethodGet, u.URL, nil, nil); w.Code != http.StatusOK {
		t.Errorf("URL signed with the previous key: %d %s, want 200", w.Code, w.Body)
	}
	nu := rotated.sign(http.MethodGet, "rot", nil)
	pu, _ := url.Parse(nu.URL)
	if kid := pu.Query().Get("kid"); kid != "k2" {
		t.Errorf("new URL signed with key %q, want the first key k2", kid)
	}

	retired := mustOpenAt(t, dir, fileblob.Options{Keys: []fileblob.Key{key2}})
	wantProblem(t, retired.do(http.MethodGet, u.URL, nil, nil), http.StatusForbidden, "signature_invalid")
	if w := retired.do(http.MethodGet, nu.URL, nil, nil); w.Code != http.StatusOK {
		t.Errorf("URL signed with the new key: %d", w.Code)
	}

	// Same id, different secret: refused.
	forged := mustOpenAt(t, dir, fileblob.Options{Keys: []fileblob.Key{{ID: "k1", Secret: bytes.Repeat([]byte{9}, 32)}}})
	wantProblem(t, forged.do(http.MethodGet, u.URL, nil, nil), http.StatusForbidden, "signature_invalid")
}

// TestSymlinkEscape plants symbolic links inside the root that point
// outside it; signed URLs through them neither read nor write outside.
func TestSymlinkEscape(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("TOP SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	bucketDir := filepath.Join(e.dir, "objects", "bkt", "team")
	if err := os.MkdirAll(bucketDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"dirlink":  outside,
		"filelink": secret,
		"rellink":  "../../../../" + filepath.Base(outside),
	} {
		if err := os.Symlink(target, filepath.Join(bucketDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A whole bucket that is a link.
	if err := os.Symlink(outside, filepath.Join(e.dir, "objects", "evil")); err != nil {
		t.Fatal(err)
	}
	evil := storage.Open(e.store, &signet.Connector{Backend: signet.BackendLocal, Bucket: "evil"})
	before := snapshot(t, outside)

	get := func(b *storage.Bucket, key string) *httptest.ResponseRecorder {
		now := e.clock.Now()
		u, err := b.SignedURL(context.Background(), key, &driver.SignOptions{Method: http.MethodGet, Now: now, Expires: now.Add(time.Hour), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		return e.do(http.MethodGet, u.URL, nil, nil)
	}
	put := func(b *storage.Bucket, key string) *httptest.ResponseRecorder {
		now := e.clock.Now()
		u, err := b.SignedURL(context.Background(), key, &driver.SignOptions{Method: http.MethodPut, Now: now, Expires: now.Add(time.Hour), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		return e.do(http.MethodPut, u.URL, nil, []byte("PWNED"))
	}
	for _, tc := range []struct {
		b   *storage.Bucket
		key string
	}{
		{e.b, "dirlink/secret"},
		{e.b, "filelink"},
		{e.b, "rellink/secret"},
		{evil, "secret"},
	} {
		if w := get(tc.b, tc.key); w.Code == http.StatusOK || strings.Contains(w.Body.String(), "TOP SECRET") {
			t.Errorf("GET %s through a link: %d %q", tc.key, w.Code, w.Body)
		}
	}
	for _, tc := range []struct {
		b   *storage.Bucket
		key string
	}{
		{e.b, "dirlink/new"},
		{e.b, "dirlink/secret"},
		{e.b, "rellink/new"},
		{evil, "new"},
		{evil, "secret"},
		{e.b, "filelink"}, // replaces the link itself, inside the root
	} {
		put(tc.b, tc.key)
	}
	if !sameTree(before, snapshot(t, outside)) {
		t.Error("files outside the root were changed")
	}
	// Multipart through a linked bucket cannot write outside either.
	ctx := context.Background()
	if id, err := evil.CreateMultipart(ctx, "mp", &driver.MultipartOptions{Size: 5, PartSize: 5}); err == nil {
		now := e.clock.Now()
		u, _ := evil.SignedURL(ctx, "mp", &driver.SignOptions{Method: http.MethodPut, Now: now, Expires: now.Add(time.Hour), Size: 5, UploadID: id, PartNumber: 1})
		w := e.do(http.MethodPut, u.URL, nil, []byte("PWNED"))
		parts, _ := evil.ListParts(ctx, "mp", id)
		if w.Code == http.StatusOK && len(parts) == 1 {
			if err := evil.CompleteMultipart(ctx, "mp", id, parts, nil); err == nil {
				t.Error("completing an upload into a linked bucket succeeded")
			}
		}
	}
	if !sameTree(before, snapshot(t, outside)) {
		t.Error("files outside the root were changed by a multipart upload")
	}
}

func TestConflict(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	e.put("a", []byte("file"))
	u := e.sign(http.MethodPut, "a/b", nil)
	wantProblem(t, e.do(http.MethodPut, u.URL, nil, []byte("x")), http.StatusConflict, "conflict")
	e.put("c/d", []byte("x"))
	u = e.sign(http.MethodPut, "c", nil)
	wantProblem(t, e.do(http.MethodPut, u.URL, nil, []byte("x")), http.StatusConflict, "conflict")
}

func TestBadRequests(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	e.put("x", []byte("x"))
	u := e.sign(http.MethodGet, "x", nil)
	q := u.URL[strings.Index(u.URL, "?"):]
	for _, tc := range []struct {
		name, method, target string
		status               int
		code                 string
	}{
		{"Delete", http.MethodDelete, u.URL, http.StatusMethodNotAllowed, "unsupported_method"},
		{"NoBucket", http.MethodGet, "/blob/" + q, http.StatusNotFound, "not_found"},
		{"BadBucket", http.MethodGet, "/blob/BKT/team/x" + q, http.StatusNotFound, "not_found"},
		{"DotDotBucket", http.MethodGet, "/blob/a..b/x" + q, http.StatusNotFound, "not_found"},
		{"NotMounted", http.MethodGet, "/other/bkt/team/x" + q, http.StatusNotFound, "not_found"},
		{"Traversal", http.MethodGet, "/blob/bkt/team/../x" + q, http.StatusBadRequest, "invalid_key"},
		{"DotSegment", http.MethodGet, "/blob/bkt/team/./x" + q, http.StatusBadRequest, "invalid_key"},
		{"EncodedTraversal", http.MethodGet, "/blob/bkt/team/%2e%2e/x" + q, http.StatusBadRequest, "invalid_key"},
		// The path decodes once to the key "%2e%2e/x", which is refused
		// too: something on the way might decode it again.
		{"DoubleEncodedTraversal", http.MethodGet, "/blob/bkt/team/%252e%252e/x" + q, http.StatusBadRequest, "invalid_key"},
		{"DoubleSlash", http.MethodGet, "/blob/bkt/team//x" + q, http.StatusBadRequest, "invalid_key"},
		{"TrailingSlash", http.MethodGet, "/blob/bkt/team/" + q, http.StatusBadRequest, "invalid_key"},
		{"NUL", http.MethodGet, "/blob/bkt/team/%00x" + q, http.StatusBadRequest, "invalid_key"},
		{"Backslash", http.MethodGet, "/blob/bkt/team/a%5C..%5Cx" + q, http.StatusBadRequest, "invalid_key"},
		{"NoQuery", http.MethodGet, "/blob/bkt/team/x", http.StatusForbidden, "signature_invalid"},
		{"Semicolon", http.MethodGet, "/blob/bkt/team/x" + q + ";x=1", http.StatusForbidden, "signature_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, e.do(tc.method, tc.target, nil, nil), tc.status, tc.code)
		})
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slogJSON(&buf)
	e := MustOpen(t, fileblob.Options{Logger: logger})
	u := e.sign(http.MethodPut, "logged", func(o *driver.SignOptions) { o.GrantID = "g-123" })
	e.do(http.MethodPut, u.URL, nil, []byte("12345"))
	g := e.sign(http.MethodGet, "logged", func(o *driver.SignOptions) { o.GrantID = "g-456" })
	e.do(http.MethodGet, g.URL, nil, nil)
	bad := strings.Replace(g.URL, "sig=", "sig=A", 1)
	e.do(http.MethodGet, bad, nil, nil)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, su := range []string{u.URL, g.URL} {
		pu, _ := url.Parse(su)
		if sig := pu.Query().Get("sig"); strings.Contains(buf.String(), sig) {
			t.Error("the access log holds a signature")
		}
	}
	if strings.Contains(buf.String(), "sig=") || strings.Contains(buf.String(), "expires=") {
		t.Error("the access log holds a URL query")
	}
	var rec struct {
		Msg      string `json:"msg"`
		Method   string `json:"method"`
		Bucket   string `json:"bucket"`
		Key      string `json:"key"`
		Grant    string `json:"grant"`
		Status   int    `json:"status"`
		BytesIn  int64  `json:"bytes_in"`
		BytesOut int64  `json:"bytes_out"`
		ClientIP string `json:"client_ip"`
	}
	json.Unmarshal([]byte(lines[0]), &rec)
	if rec.Method != "PUT" || rec.Bucket != "bkt" || rec.Key != "team/logged" || rec.Grant != "g-123" ||
		rec.Status != 200 || rec.BytesIn != 5 || rec.ClientIP != "192.0.2.1" {
		t.Errorf("PUT log line %+v", rec)
	}
	json.Unmarshal([]byte(lines[1]), &rec)
	if rec.Method != "GET" || rec.Grant != "g-456" || rec.Status != 200 || rec.BytesOut != 5 {
		t.Errorf("GET log line %+v", rec)
	}
	rec.Grant = ""
	json.Unmarshal([]byte(lines[2]), &rec)
	if rec.Status != 403 || rec.Grant != "" {
		t.Errorf("refused GET log line %+v (an unverified grant must not be logged)", rec)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for name, opts := range map[string]fileblob.Options{
		"NoBaseURL":      {Keys: []fileblob.Key{key1}},
		"RelativeURL":    {BaseURL: "/x", Keys: []fileblob.Key{key1}},
		"QueryURL":       {BaseURL: "http://h/?a=b", Keys: []fileblob.Key{key1}},
		"FTP":            {BaseURL: "ftp://h", Keys: []fileblob.Key{key1}},
		"NoKeys":         {BaseURL: baseURL},
		"ShortSecret":    {BaseURL: baseURL, Keys: []fileblob.Key{{ID: "a", Secret: []byte("short")}}},
		"BadKeyID":       {BaseURL: baseURL, Keys: []fileblob.Key{{ID: "a b", Secret: key1.Secret}}},
		"RepeatedKeyIDs": {BaseURL: baseURL, Keys: []fileblob.Key{key1, key1}},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			_, err := fileblob.Open(dir, opts)
			if signet.ErrorCode(err) != signet.Invalid {
				t.Errorf("Open: %v, want Invalid", err)
			}
			if err != nil && strings.Contains(err.Error(), string(key1.Secret)) {
				t.Error("error holds a secret")
			}
		})
	}
	if s := fmtKey(key1); strings.Contains(s, string(key1.Secret)) || !strings.Contains(s, "k1") {
		t.Errorf("Key formats as %q", s)
	}
}

func TestSignedURLDriverChecks(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	now := e.clock.Now()
	base := driver.SignOptions{Method: http.MethodGet, Bucket: "bkt", Key: "k", Now: now, Expires: now.Add(time.Hour), Size: -1}
	for _, tc := range []struct {
		name string
		edit func(*driver.SignOptions)
		code signet.Code
	}{
		{"BucketUpper", func(o *driver.SignOptions) { o.Bucket = "Bkt" }, signet.Invalid},
		{"BucketDotDot", func(o *driver.SignOptions) { o.Bucket = "a..b" }, signet.Invalid},
		{"BucketSlash", func(o *driver.SignOptions) { o.Bucket = "a/b" }, signet.Invalid},
		{"BucketLong", func(o *driver.SignOptions) { o.Bucket = strings.Repeat("a", 64) }, signet.Invalid},
		{"BucketLeadingDash", func(o *driver.SignOptions) { o.Bucket = "-a" }, signet.Invalid},
		{"Key", func(o *driver.SignOptions) { o.Key = "../x" }, signet.InvalidKey},
		{"Method", func(o *driver.SignOptions) { o.Method = "DELETE" }, signet.Invalid},
		{"BindingOnGet", func(o *driver.SignOptions) { o.Size = 1 }, signet.Invalid},
		{"UploadID", func(o *driver.SignOptions) { o.Method, o.UploadID, o.PartNumber = "PUT", "../x", 1 }, signet.InvalidPart},
		{"Grant", func(o *driver.SignOptions) { o.GrantID = "a b" }, signet.Invalid},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := e.store.SignedURL(context.Background(), &o)
			if got := signet.ErrorCode(err); got != tc.code {
				t.Errorf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func fmtKey(k fileblob.Key) string {
	return fmt.Sprint(k) + fmt.Sprintf("%+v %#v", fileblob.Options{Keys: []fileblob.Key{k}}, k.ID)
}

func TestObjectFiles(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	u := e.sign(http.MethodPut, "raw/file", func(o *driver.SignOptions) { o.ContentType = "text/csv" })
	if w := e.do(http.MethodPut, u.URL, u.Headers, []byte("a,b\n")); w.Code != http.StatusOK {
		t.Fatalf("PUT: %d", w.Code)
	}
	data := filepath.Join(e.dir, "objects", "bkt", "team", "raw", "file")
	t.Run("OKPlainFile", func(t *testing.T) {
		if b, err := os.ReadFile(data); err != nil || string(b) != "a,b\n" {
			t.Errorf("object file holds %q, %v; want exactly the bytes", b, err)
		}
	})
	t.Run("OKStaleMetadataIgnored", func(t *testing.T) {
		// As if the store crashed between writing the data and its metadata.
		tmp := data + ".new"
		os.WriteFile(tmp, []byte("x,y,z\n"), 0o600)
		os.Rename(tmp, data)
		g := e.sign(http.MethodGet, "raw/file", nil)
		w := e.do(http.MethodGet, g.URL, nil, nil)
		if w.Code != http.StatusOK || w.Body.String() != "x,y,z\n" || w.Header().Get("Content-Type") != "application/octet-stream" || w.Header().Get("ETag") != "" {
			t.Errorf("GET with stale metadata: %d %q %v", w.Code, w.Body, w.Header())
		}
	})
}

// TestConcurrentPuts races uploads of one key: afterwards the metadata
// served belongs to the bytes served.
func TestConcurrentPuts(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		ct := "application/x-" + string(rune('a'+i))
		u := e.sign(http.MethodPut, "race", func(o *driver.SignOptions) { o.ContentType = ct })
		body := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		wg.Go(func() { e.do(http.MethodPut, u.URL, u.Headers, body) })
	}
	wg.Wait()
	g := e.sign(http.MethodGet, "race", nil)
	w := e.do(http.MethodGet, g.URL, nil, nil)
	b := w.Body.Bytes()
	sum := sha256.Sum256(b)
	if len(b) == 0 || w.Header().Get("Content-Type") != "application/x-"+string(b[:1]) || w.Header().Get("ETag") != `"`+hexString(sum[:])+`"` {
		t.Errorf("GET after racing PUTs: %d bytes of %q with %v", len(b), b[:1], w.Header())
	}
}
