package azureblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/azureblob"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/storagetest"
)

// env is an Azurite peer with a fresh container and a backend for it.
type env struct {
	peer      *testpeer.AzuritePeer
	container string
	be        *azureblob.Backend
	bucket    *storage.Bucket
	client    *http.Client
}

// newEnv creates a container in p (shared key, HTTP) and opens a backend
// on it with cfg's other settings, and proves that Azurite rejects a
// tampered SAS before anything else relies on it.
func newEnv(t *testing.T, p *testpeer.AzuritePeer, edit func(*azureblob.Config)) *env {
	t.Helper()
	e := &env{peer: p, container: p.Container(t), client: p.Client()}
	cfg := azureblob.Config{
		Account:    p.Account,
		Container:  e.container,
		Endpoint:   p.Endpoint,
		SharedKey:  p.Key,
		HTTPClient: p.Client(),
	}
	if edit != nil {
		edit(&cfg)
		e.container = cfg.Container
	}
	be, err := azureblob.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	e.be = be
	e.bucket = storage.Open(be, &signet.Connector{Backend: signet.BackendAzure, Bucket: e.container, Prefix: cfg.Prefix})
	e.requireVerifies(t)
	return e
}

// requireVerifies stops the test unless Azurite refuses a SAS with a
// flipped signature character, for a PUT and for a GET.
func (e *env) requireVerifies(t *testing.T) {
	t.Helper()
	put := e.sign(t, http.MethodPut, "verify/tamper", nil)
	if st, _, _ := e.do(t, put.Method, tamper(t, put.URL, "sig"), put.Headers, []byte("x")); st != http.StatusForbidden {
		t.Fatalf("invalid environment: Azurite accepted a PUT with a tampered signature (%d, want 403)", st)
	}
	e.put(t, "verify/tamper", []byte("x"))
	get := e.sign(t, http.MethodGet, "verify/tamper", nil)
	if st, _, _ := e.do(t, get.Method, tamper(t, get.URL, "sig"), nil, nil); st != http.StatusForbidden {
		t.Fatalf("invalid environment: Azurite accepted a GET with a tampered signature (%d, want 403)", st)
	}
}

func (e *env) signErr(method, key string, edit func(*driver.SignOptions)) (*driver.SignedURL, error) {
	now := time.Now()
	o := &driver.SignOptions{
		Method:  method,
		Now:     now,
		Expires: now.Truncate(time.Second).Add(15 * time.Minute),
		Size:    -1,
		GrantID: "g-test.1",
	}
	if edit != nil {
		edit(o)
	}
	return e.bucket.SignedURL(context.Background(), key, o)
}

func (e *env) sign(t *testing.T, method, key string, edit func(*driver.SignOptions)) *driver.SignedURL {
	t.Helper()
	u, err := e.signErr(method, key, edit)
	if err != nil {
		t.Fatalf("signing %s %s: %v", method, key, err)
	}
	return u
}

func (e *env) do(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	return doWith(t, e.client, method, rawURL, headers, body)
}

// The tests share the conformance suite's request and check helpers.
var (
	doWith      = storagetest.Do
	randomBytes = storagetest.RandomBytes
	wantCode    = storagetest.WantCode
)

// put uploads body to key through a fresh single-PUT URL.
func (e *env) put(t *testing.T, key string, body []byte) {
	t.Helper()
	u := e.sign(t, http.MethodPut, key, nil)
	if st, b, _ := e.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusCreated {
		t.Fatalf("PUT %s answered %d: %s", key, st, b)
	}
}

// get downloads key through a fresh URL.
func (e *env) get(t *testing.T, key string) (int, []byte, http.Header) {
	t.Helper()
	u := e.sign(t, http.MethodGet, key, nil)
	return e.do(t, u.Method, u.URL, u.Headers, nil)
}

// tamper changes the first character of query parameter name.
func tamper(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	v := q.Get(name)
	if v == "" {
		t.Fatalf("the URL has no %s parameter", name)
	}
	if v[0] == 'A' {
		v = "B" + v[1:]
	} else {
		v = "A" + v[1:]
	}
	q.Set(name, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// withParam returns rawURL with query parameter name set to value.
func withParam(t *testing.T, rawURL, name, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestAzureOnAzurite runs the tests that need an Azurite with shared-key
// authentication, sharing one server (it takes seconds to start).
func TestAzureOnAzurite(t *testing.T) {
	p := testpeer.Azurite(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *testpeer.AzuritePeer)
	}{
		{"Conformance", testConformance},
		{"SAS", testSAS},
		{"ClientPrefix", testClientPrefix},
		{"Multipart", testMultipart},
		{"MultipartLarge", testMultipartLarge},
		{"MultipartNoSHA256", testMultipartNoSHA256},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, p) })
	}
}

// testConformance runs the shared storage conformance suite against
// Azurite, with the capabilities Azure has:
//
//   - a successful PUT (Put Blob, Put Block) answers 201 Created
//     (PutStatus);
//   - chunked uploads (Multipart) through Put Block and Put Block List:
//     Put Block answers no ETag, and a part's ETag is its block id, which
//     the part URL names (PartETag); a block staged for an unknown or
//     aborted upload lands on the blob but revives nothing
//     (PartsOutliveUpload); completion applies the content type and
//     verifies a whole-object SHA-256 (MultipartContentType,
//     MultipartChecksum), which a single PUT's SAS cannot bind
//     (BindsContentType, BindsSize, BindsChecksum are false);
//   - Azurite does not check sip (its IP range validation is a TODO), so
//     the suite cannot prove a client network binding here: it runs with
//     BindsClientPrefix off, through a backend that refuses ClientPrefix,
//     and testClientPrefix proves sip with a gate written from Azure's
//     documentation.
func testConformance(t *testing.T, p *testpeer.AzuritePeer) {
	e := newEnv(t, p, func(c *azureblob.Config) { c.Prefix = "team/" })
	storagetest.Run(t, &storagetest.Harness{
		Backend:   conformanceBackend{e.be},
		Name:      signet.BackendAzure,
		Bucket:    e.container,
		Prefix:    "team/",
		Client:    e.client,
		PutStatus: http.StatusCreated,
		// A SAS binds none of these, and Azurite checks no sip.
		BindsContentType: false, BindsSize: false, BindsChecksum: false, BindsClientPrefix: false,
		Multipart:            true,
		PartETag:             blockIDOf,
		PartsOutliveUpload:   true,
		MultipartContentType: true,
		MultipartChecksum:    true,
	})
}

// blockIDOf returns the block id a part URL stages: the part's ETag.
func blockIDOf(partURL string, _ http.Header) string {
	u, err := url.Parse(partURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("blockid")
}

// conformanceBackend is the driver refusing client networks (see
// testConformance); everything else, chunked uploads included, is the
// driver's own.
type conformanceBackend struct{ *azureblob.Backend }

func (c conformanceBackend) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	if o.ClientPrefix.IsValid() {
		return nil, signet.Errorf(signet.Unimplemented, "Azurite cannot prove a sip binding")
	}
	return c.Backend.SignedURL(ctx, o)
}

// testSAS checks what a SAS binds, against Azurite.
func testSAS(t *testing.T, p *testpeer.AzuritePeer) {
	e := newEnv(t, p, nil)
	const key = "sas/a b%2e+ü.bin"
	body := randomBytes(70000)

	t.Run("RoundTrip", func(t *testing.T) {
		u := e.sign(t, http.MethodPut, key, nil)
		if u.Headers[azureblob.BlobTypeHeader] != azureblob.BlockBlob {
			t.Errorf("PUT headers %v, want %s: %s", u.Headers, azureblob.BlobTypeHeader, azureblob.BlockBlob)
		}
		if st, b, _ := e.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusCreated {
			t.Fatalf("PUT answered %d: %s", st, b)
		}
		st, got, _ := e.get(t, key)
		if st != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("GET answered %d with %d bytes, want 200 with %d", st, len(got), len(body))
		}
		h := e.sign(t, http.MethodHead, key, nil)
		if st, _, hdr := e.do(t, h.Method, h.URL, nil, nil); st != http.StatusOK || hdr.Get("Content-Length") != "70000" {
			t.Errorf("HEAD answered %d with Content-Length %q", st, hdr.Get("Content-Length"))
		}
	})
	t.Run("ErrNoBlobType", func(t *testing.T) {
		u := e.sign(t, http.MethodPut, "sas/no-type", nil)
		if st, _, _ := e.do(t, u.Method, u.URL, nil, []byte("x")); st != http.StatusBadRequest {
			t.Errorf("PUT without x-ms-blob-type answered %d, want 400", st)
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		get := e.sign(t, http.MethodGet, key, nil)
		for _, tc := range []struct{ what, url string }{
			{"signature", tamper(t, get.URL, "sig")},
			{"expiry moved later", withParam(t, get.URL, "se", time.Now().Add(48*time.Hour).UTC().Format("2006-01-02T15:04:05Z"))},
			{"permissions widened", withParam(t, get.URL, "sp", "rcw")},
			{"network added", withParam(t, get.URL, "sip", "127.0.0.0-127.255.255.255")},
			{"protocol changed", withParam(t, get.URL, "spr", "https")},
			{"another blob", strings.Replace(get.URL, "/sas/", "/sas2/", 1)},
		} {
			if st, _, _ := e.do(t, http.MethodGet, tc.url, nil, nil); st != http.StatusForbidden {
				t.Errorf("GET with the %s answered %d, want 403", tc.what, st)
			}
		}
	})
	t.Run("ErrWrongPermission", func(t *testing.T) {
		get := e.sign(t, http.MethodGet, key, nil)
		if st, _, _ := e.do(t, http.MethodPut, get.URL, map[string]string{azureblob.BlobTypeHeader: azureblob.BlockBlob}, []byte("over")); st != http.StatusForbidden {
			t.Errorf("PUT with a read SAS answered %d, want 403", st)
		}
		put := e.sign(t, http.MethodPut, key, nil)
		if st, _, _ := e.do(t, http.MethodGet, put.URL, nil, nil); st != http.StatusForbidden {
			t.Errorf("GET with a create+write SAS answered %d, want 403", st)
		}
		if st, _, _ := e.do(t, http.MethodDelete, put.URL, nil, nil); st != http.StatusForbidden {
			t.Errorf("DELETE with a create+write SAS answered %d, want 403", st)
		}
		if st, got, _ := e.get(t, key); st != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("the object changed after refused requests: GET answered %d", st)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		var expires time.Time
		u := e.sign(t, http.MethodGet, key, func(o *driver.SignOptions) {
			expires = o.Now.Truncate(time.Second).Add(2 * time.Second)
			o.Expires = expires
		})
		if !u.Expires.Equal(expires) {
			t.Errorf("Expires = %v, want %v", u.Expires, expires)
		}
		if st, _, _ := e.do(t, u.Method, u.URL, nil, nil); st != http.StatusOK {
			t.Errorf("GET before expiry answered %d, want 200", st)
		}
		time.Sleep(time.Until(expires) + 1500*time.Millisecond)
		if st, _, _ := e.do(t, u.Method, u.URL, nil, nil); st != http.StatusForbidden {
			t.Errorf("GET after expiry answered %d, want 403", st)
		}
	})
	t.Run("StartBackdated", func(t *testing.T) {
		// A URL issued "now" by a server whose clock runs 4 minutes ahead
		// of the store's works at once.
		u := e.sign(t, http.MethodGet, key, func(o *driver.SignOptions) {
			o.Now = o.Now.Add(4 * time.Minute)
			o.Expires = o.Now.Truncate(time.Second).Add(time.Hour)
		})
		if st, _, _ := e.do(t, u.Method, u.URL, nil, nil); st != http.StatusOK {
			t.Errorf("GET of a URL issued 4 minutes in the store's future answered %d, want 200", st)
		}
	})
	t.Run("ErrHTTPSOnly", func(t *testing.T) {
		// A backend whose endpoint is https signs spr=https; Azurite
		// refuses such a SAS over http.
		be, err := azureblob.Open(context.Background(), azureblob.Config{
			Account: e.peer.Account, Container: e.container, SharedKey: e.peer.Key,
			Endpoint: strings.Replace(e.peer.Endpoint, "http://", "https://", 1),
		})
		if err != nil {
			t.Fatal(err)
		}
		u := signWith(t, be, e.container, http.MethodGet, key)
		if q, _ := url.ParseQuery(u.URL[strings.IndexByte(u.URL, '?')+1:]); q.Get("spr") != "https" {
			t.Errorf("spr = %q, want https", q.Get("spr"))
		}
		plain := strings.Replace(u.URL, "https://", "http://", 1)
		if st, _, _ := e.do(t, u.Method, plain, nil, nil); st != http.StatusForbidden {
			t.Errorf("GET over http with spr=https answered %d, want 403", st)
		}
		if u, _ := url.Parse(e.sign(t, http.MethodGet, key, nil).URL); u.Query().Get("spr") == "https" {
			t.Errorf("an http endpoint signed spr=https")
		}
	})
	t.Run("ErrUnimplemented", func(t *testing.T) {
		sum := sha256.Sum256(body)
		for _, tc := range []struct {
			what string
			edit func(*driver.SignOptions)
			code signet.Code
		}{
			{"content type", func(o *driver.SignOptions) { o.ContentType = "text/plain" }, signet.Unimplemented},
			{"size", func(o *driver.SignOptions) { o.Size = 10 }, signet.Unimplemented},
			{"sha256", func(o *driver.SignOptions) { o.SHA256 = sum[:] }, signet.Unimplemented},
			{"IPv6 network", func(o *driver.SignOptions) { o.ClientPrefix = netip.MustParsePrefix("2001:db8::/32") }, signet.Unimplemented},
			{"part sha256", func(o *driver.SignOptions) {
				o.UploadID, o.PartNumber, o.SHA256 = "abcdefghijklmnopqrstuvwx", 1, sum[:]
			}, signet.Unimplemented},
			{"part content type", func(o *driver.SignOptions) {
				o.UploadID, o.PartNumber, o.ContentType = "abcdefghijklmnopqrstuvwx", 1, "text/plain"
			}, signet.Invalid},
		} {
			_, err := e.signErr(http.MethodPut, key, tc.edit)
			wantCode(t, tc.what, err, tc.code)
		}
	})
}

func signWith(t *testing.T, be driver.Backend, bucket, method, key string) *driver.SignedURL {
	t.Helper()
	now := time.Now()
	u, err := be.SignedURL(context.Background(), &driver.SignOptions{
		Method: method, Bucket: bucket, Key: key, Now: now,
		Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1,
	})
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	return u
}

// testClientPrefix checks the sip binding: a URL bound to one address
// works from there and is refused from another. Azure refuses a request
// from outside the signed range; Azurite does not check sip at all (its
// validateIPRange is a TODO). So Azurite proves that sip is signed
// (altering or removing it is refused) and that a request from inside the
// range passes, and sipGate, in front of Azurite, does the one check
// Azurite skips, with real source addresses: requests leave from
// 127.0.0.2 and 127.0.0.3 (net.Dialer.LocalAddr; Linux routes all of
// 127.0.0.0/8 to the loopback device).
func testClientPrefix(t *testing.T, p *testpeer.AzuritePeer) {
	gate := newSIPGate(t, p)
	e := newEnv(t, p, func(c *azureblob.Config) { c.Endpoint = gate.URL + "/" + p.Account })
	const key = "sip/object"
	e.put(t, key, []byte("x"))
	bound := func(p string) *driver.SignedURL {
		return e.sign(t, http.MethodGet, key, func(o *driver.SignOptions) { o.ClientPrefix = netip.MustParsePrefix(p) })
	}
	from := func(src string) *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext
		return &http.Client{Transport: tr}
	}
	get := func(src, rawURL string) int {
		t.Helper()
		st, _, _ := doWith(t, from(src), http.MethodGet, rawURL, nil, nil)
		return st
	}
	for _, tc := range []struct {
		prefix, sip string
		inside      []string
		outside     []string
	}{
		{"127.0.0.2/32", "127.0.0.2", []string{"127.0.0.2"}, []string{"127.0.0.3", "127.0.0.1"}},
		{"127.0.0.2/31", "127.0.0.2-127.0.0.3", []string{"127.0.0.2", "127.0.0.3"}, []string{"127.0.0.4", "127.0.0.1"}},
		{"127.0.0.0/8", "127.0.0.0-127.255.255.255", []string{"127.0.0.1", "127.0.0.3"}, nil},
		{"::ffff:127.0.0.2/128", "127.0.0.2", []string{"127.0.0.2"}, []string{"127.0.0.3"}},
	} {
		u := bound(tc.prefix)
		q, _ := url.ParseQuery(u.URL[strings.IndexByte(u.URL, '?')+1:])
		if q.Get("sip") != tc.sip {
			t.Errorf("%s: sip = %q, want %q", tc.prefix, q.Get("sip"), tc.sip)
		}
		for _, src := range tc.inside {
			if st := get(src, u.URL); st != http.StatusOK {
				t.Errorf("GET from %s with sip %s answered %d, want 200", src, tc.sip, st)
			}
		}
		for _, src := range tc.outside {
			if st := get(src, u.URL); st != http.StatusForbidden {
				t.Errorf("GET from %s with sip %s answered %d, want 403", src, tc.sip, st)
			}
		}
	}

	// Azurite checks that sip is signed: a client outside the range
	// cannot widen it or drop it to pass the gate.
	u := bound("127.0.0.2/32")
	for _, tc := range []struct{ what, url string }{
		{"widened to 127.0.0.0/8", withParam(t, u.URL, "sip", "127.0.0.0-127.255.255.255")},
		{"moved to 127.0.0.3", withParam(t, u.URL, "sip", "127.0.0.3")},
		{"removed", withoutParam(t, u.URL, "sip")},
	} {
		if st := get("127.0.0.3", tc.url); st != http.StatusForbidden {
			t.Errorf("GET from 127.0.0.3 with sip %s answered %d, want 403", tc.what, st)
		}
	}
	if n := gate.refused.Load(); n == 0 {
		t.Error("the gate refused nothing")
	}

	// Straight to Azurite, the outside request passes: the reason for
	// the gate. Should Azurite start checking sip, this notices.
	direct := strings.Replace(u.URL, gate.URL, strings.TrimSuffix(p.Endpoint, "/"+p.Account), 1)
	if st := get("127.0.0.3", direct); st == http.StatusForbidden {
		t.Log("Azurite itself refused a request from outside the sip range: it checks sip now; the gate could go")
	} else if st != http.StatusOK {
		t.Errorf("GET straight to Azurite from 127.0.0.3 answered %d", st)
	}
}

// sipGate is a reverse proxy in front of Azurite that does what Azure
// does with a SAS's sip field and Azurite does not: it refuses (403) a
// request whose source address is outside the signed range ("a.b.c.d" or
// "a.b.c.d-e.f.g.h", as Azure documents sip), and passes every request to
// Azurite, which verifies the signature, sip included. It stands in for
// that one check only.
type sipGate struct {
	*httptest.Server
	refused atomic.Int64
}

func newSIPGate(t *testing.T, p *testpeer.AzuritePeer) *sipGate {
	t.Helper()
	target, err := url.Parse(p.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = p.Client().Transport
	g := &sipGate{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sip := r.URL.Query().Get("sip"); sip != "" {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			src, err := netip.ParseAddr(host)
			if err != nil || !inSIP(sip, src.Unmap()) {
				g.refused.Add(1)
				w.Header().Set("x-ms-error-code", "AuthorizationSourceIPMismatch")
				w.WriteHeader(http.StatusForbidden)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// inSIP reports whether a falls in the sip range, read independently of
// the driver.
func inSIP(sip string, a netip.Addr) bool {
	lo, hi, isRange := strings.Cut(sip, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := netip.ParseAddr(lo)
	last, err2 := netip.ParseAddr(hi)
	if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() {
		return false
	}
	return a.Is4() && first.Compare(a) <= 0 && a.Compare(last) <= 0
}

// withoutParam returns rawURL without query parameter name.
func withoutParam(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del(name)
	u.RawQuery = q.Encode()
	return u.String()
}

// upload is a chunked upload driven through part URLs, as a client does.
type upload struct {
	e        *env
	key, id  string
	data     []byte
	partSize int64
	count    int
}

func (e *env) newUpload(t *testing.T, key string, data []byte, partSize int64, ct string, sum []byte) *upload {
	t.Helper()
	ps, count, err := storage.PlanParts(int64(len(data)), partSize)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.bucket.CreateMultipart(context.Background(), key, &driver.MultipartOptions{
		ContentType: ct, Size: int64(len(data)), PartSize: ps, SHA256: sum,
	})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	return &upload{e: e, key: key, id: id, data: data, partSize: ps, count: count}
}

func (u *upload) partURL(t *testing.T, n int) *driver.SignedURL {
	t.Helper()
	return u.e.sign(t, http.MethodPut, u.key, func(o *driver.SignOptions) {
		o.UploadID, o.PartNumber = u.id, n
		o.Size = storage.PartSize(int64(len(u.data)), u.partSize, n)
	})
}

func (u *upload) body(n int) []byte {
	off := int64(n-1) * u.partSize
	return u.data[off : off+storage.PartSize(int64(len(u.data)), u.partSize, n)]
}

// putParts uploads parts in parallel through fresh part URLs.
func (u *upload) putParts(t *testing.T, numbers ...int) {
	t.Helper()
	status := make([]int, len(numbers))
	var wg sync.WaitGroup
	for i, n := range numbers {
		p := u.partURL(t, n)
		if p.Headers != nil {
			t.Errorf("part URL headers %v, want none", p.Headers)
		}
		body := u.body(n)
		wg.Go(func() {
			req, err := http.NewRequest(p.Method, p.URL, bytes.NewReader(body))
			if err != nil {
				return
			}
			resp, err := u.e.client.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, st := range status {
		if st != http.StatusCreated {
			t.Fatalf("PUT of part %d answered %d, want 201", numbers[i], st)
		}
	}
}

// parts returns the upload's parts as listed by the store.
func (u *upload) parts(t *testing.T) []driver.Part {
	t.Helper()
	parts, err := u.e.bucket.ListParts(context.Background(), u.key, u.id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	return parts
}

func (u *upload) complete(parts []driver.Part, sum []byte) error {
	return u.e.bucket.CompleteMultipart(context.Background(), u.key, u.id, parts, sum)
}

// testMultipart checks chunked uploads through Put Block and Put Block
// List against Azurite: what storagetest's multipart checks cover, in
// Azure's terms (see testConformance).
func testMultipart(t *testing.T, p *testpeer.AzuritePeer) {
	e := newEnv(t, p, func(c *azureblob.Config) { c.Prefix = "team/" })
	ctx := context.Background()

	t.Run("Complete", func(t *testing.T) {
		data := randomBytes(2*storage.MinPartSize + 123457)
		const ct = "application/x-signet-test"
		u := e.newUpload(t, "mp/complete.bin", data, storage.MinPartSize, ct, nil)
		if u.count != 3 {
			t.Fatalf("%d parts planned, want 3", u.count)
		}
		if parts := u.parts(t); len(parts) != 0 {
			t.Errorf("a new upload lists %d parts, want 0", len(parts))
		}
		u.putParts(t, 3, 1)
		parts := u.parts(t)
		if len(parts) != 2 || parts[0].Number != 1 || parts[1].Number != 3 {
			t.Fatalf("after parts 3 and 1, ListParts = %+v", parts)
		}
		u.putParts(t, 2, 2) // a part may be sent again
		parts = u.parts(t)
		if len(parts) != 3 {
			t.Fatalf("ListParts returned %d parts, want 3", len(parts))
		}
		for i, p := range parts {
			n := i + 1
			purl, _ := url.Parse(u.partURL(t, n).URL)
			if p.Number != n || p.ETag != purl.Query().Get("blockid") || p.Size != int64(len(u.body(n))) {
				t.Errorf("ListParts[%d] = %+v, want number %d, the part URL's block id, size %d", i, p, n, len(u.body(n)))
			}
		}

		bad := append([]driver.Part(nil), parts...)
		bad[1].ETag = `"0123456789abcdef0123456789abcdef"`
		wantCode(t, "complete with a wrong ETag", u.complete(bad, nil), signet.Invalid)
		wantCode(t, "complete with a missing part", u.complete(parts[:2], nil), signet.Invalid)
		wrongSize := append([]driver.Part(nil), parts...)
		wrongSize[2].Size++
		wantCode(t, "complete with a wrong size", u.complete(wrongSize, nil), signet.Invalid)

		quoted := append([]driver.Part(nil), parts...)
		quoted[0].ETag = `"` + quoted[0].ETag + `"`
		sum := sha256.Sum256(data)
		if err := u.complete(quoted, sum[:]); err != nil {
			t.Fatalf("CompleteMultipart: %v", err)
		}
		st, got, h := e.get(t, u.key)
		if st != http.StatusOK || !bytes.Equal(got, data) || h.Get("Content-Type") != ct {
			t.Errorf("GET answered %d with %d bytes and Content-Type %q, want 200 with %d bytes and %q", st, len(got), h.Get("Content-Type"), len(data), ct)
		}
		_, err := e.bucket.ListParts(ctx, u.key, u.id)
		wantCode(t, "ListParts after completion", err, signet.NotFound)
		wantCode(t, "completing twice", u.complete(parts, nil), signet.NotFound)
	})

	t.Run("WrongPartSizeReplaced", func(t *testing.T) {
		data := randomBytes(storage.MinPartSize + 10)
		u := e.newUpload(t, "mp/resize.bin", data, storage.MinPartSize, "", nil)
		u.putParts(t, 1)
		// A part URL does not bind the size: the store takes a short
		// block, and completion refuses it until the part is sent again.
		p := u.partURL(t, 2)
		if st, _, _ := e.do(t, p.Method, p.URL, nil, u.body(2)[:5]); st != http.StatusCreated {
			t.Fatalf("PUT of a short part answered %d", st)
		}
		parts := []driver.Part{{Number: 1, ETag: u.parts(t)[0].ETag, Size: storage.MinPartSize}, {Number: 2, Size: 10}}
		parts[1].ETag = u.parts(t)[1].ETag
		wantCode(t, "complete with a short part", u.complete(parts, nil), signet.Invalid)
		u.putParts(t, 2)
		if err := u.complete(parts, nil); err != nil {
			t.Fatalf("CompleteMultipart after the part was sent again: %v", err)
		}
		if st, got, _ := e.get(t, u.key); st != http.StatusOK || !bytes.Equal(got, data) {
			t.Errorf("GET answered %d with %d bytes, want the %d bytes", st, len(got), len(data))
		}
	})

	t.Run("ErrChecksumMismatch", func(t *testing.T) {
		data := randomBytes(1 << 20)
		u := e.newUpload(t, "mp/checksum.bin", data, 0, "", nil)
		u.putParts(t, 1)
		wrong := sha256.Sum256([]byte("not the data"))
		wantCode(t, "complete with a wrong sha256", u.complete(u.parts(t), wrong[:]), signet.ChecksumMismatch)
		if st, _, _ := e.get(t, u.key); st != http.StatusNotFound {
			t.Errorf("GET after a checksum mismatch answered %d, want 404 (the object must be deleted)", st)
		}
	})

	t.Run("Abort", func(t *testing.T) {
		data := randomBytes(1000)
		u := e.newUpload(t, "mp/abort.bin", data, 0, "", nil)
		u.putParts(t, 1)
		if err := e.bucket.AbortMultipart(ctx, u.key, u.id); err != nil {
			t.Fatalf("AbortMultipart: %v", err)
		}
		_, err := e.bucket.ListParts(ctx, u.key, u.id)
		wantCode(t, "ListParts after abort", err, signet.NotFound)
		wantCode(t, "complete after abort", u.complete([]driver.Part{{Number: 1, ETag: "x"}}, nil), signet.NotFound)
		wantCode(t, "aborting twice", e.bucket.AbortMultipart(ctx, u.key, u.id), signet.NotFound)
		if st, _, _ := e.get(t, u.key); st != http.StatusNotFound {
			t.Errorf("GET after abort answered %d, want 404", st)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		const key = "mp/unknown.bin"
		for _, id := range []string{"abcdefghijklmnopqrstuvwx", "not-an-upload-id"} {
			_, err := e.bucket.ListParts(ctx, key, id)
			wantCode(t, "ListParts of an unknown upload", err, signet.NotFound)
			wantCode(t, "AbortMultipart of an unknown upload", e.bucket.AbortMultipart(ctx, key, id), signet.NotFound)
			err = e.bucket.CompleteMultipart(ctx, key, id, []driver.Part{{Number: 1, ETag: "x"}}, nil)
			wantCode(t, "CompleteMultipart of an unknown upload", err, signet.NotFound)
		}
		other := e.newUpload(t, "mp/other.bin", []byte("0123456789"), 0, "", nil)
		_, err := e.bucket.ListParts(ctx, key, other.id)
		wantCode(t, "ListParts with another key's upload id", err, signet.NotFound)
		wantCode(t, "AbortMultipart with another key's upload id", e.bucket.AbortMultipart(ctx, key, other.id), signet.NotFound)
		if _, err := e.bucket.ListParts(ctx, other.key, other.id); err != nil {
			t.Errorf("the other key's upload was disturbed: %v", err)
		}
	})

	t.Run("ConcurrentUploadsOfOneKey", func(t *testing.T) {
		// Committing one upload discards the other's blocks (documented at
		// CreateMultipart): the second completion is refused, not mixed.
		a := e.newUpload(t, "mp/race.bin", []byte("first upload"), 0, "", nil)
		b := e.newUpload(t, "mp/race.bin", []byte("second upload"), 0, "", nil)
		a.putParts(t, 1)
		b.putParts(t, 1)
		bParts := b.parts(t)
		if err := a.complete(a.parts(t), nil); err != nil {
			t.Fatalf("completing the first upload: %v", err)
		}
		err := b.complete(bParts, nil)
		if c := signet.ErrorCode(err); c != signet.NotFound && c != signet.Invalid {
			t.Errorf("completing the second upload: %v, want NotFound or Invalid", err)
		}
		if st, got, _ := e.get(t, a.key); st != http.StatusOK || string(got) != "first upload" {
			t.Errorf("GET answered %d %q, want the first upload", st, got)
		}
	})

	t.Run("ErrPartTooLarge", func(t *testing.T) {
		_, err := e.bucket.CreateMultipart(ctx, "mp/big.bin", &driver.MultipartOptions{Size: 5 * storage.GiB * 2, PartSize: 4001 << 20})
		wantCode(t, "a part size above 4000 MiB", err, signet.Invalid)
	})
}

// testMultipartLarge uploads 24 MiB in five blocks through part URLs and
// verifies the whole-object SHA-256 at completion.
func testMultipartLarge(t *testing.T, p *testpeer.AzuritePeer) {
	e := newEnv(t, p, nil)
	data := randomBytes(24 << 20)
	sum := sha256.Sum256(data)
	u := e.newUpload(t, "large/object.bin", data, storage.MinPartSize, "application/octet-stream", sum[:])
	if u.count != 5 {
		t.Fatalf("%d parts planned, want 5", u.count)
	}
	u.putParts(t, 1, 2, 3, 4, 5)
	if err := u.complete(u.parts(t), sum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	st, got, _ := e.get(t, u.key)
	if gs := sha256.Sum256(got); st != http.StatusOK || gs != sum {
		t.Errorf("GET answered %d with %d bytes not matching the upload", st, len(got))
	}
}

// testMultipartNoSHA256 checks Config.DisableMultipartSHA256.
func testMultipartNoSHA256(t *testing.T, p *testpeer.AzuritePeer) {
	e := newEnv(t, p, func(c *azureblob.Config) { c.DisableMultipartSHA256 = true })
	sum := sha256.Sum256([]byte("x"))
	_, err := e.bucket.CreateMultipart(context.Background(), "k", &driver.MultipartOptions{Size: 1, PartSize: 1, SHA256: sum[:]})
	wantCode(t, "CreateMultipart with a sha256", err, signet.Unimplemented)
	u := e.newUpload(t, "k", []byte("x"), 0, "", nil)
	u.putParts(t, 1)
	wantCode(t, "CompleteMultipart with a sha256", u.complete(u.parts(t), sum[:]), signet.Unimplemented)
	if err := u.complete(u.parts(t), nil); err != nil {
		t.Errorf("CompleteMultipart without a sha256: %v", err)
	}
}

// staticToken is an Entra ID credential that always answers one token.
type staticToken struct{ token string }

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: s.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestAzureUserDelegation signs user-delegation SAS with a key Azurite issues to
// an Entra ID token, over HTTPS, and checks that Azurite verifies them.
func TestAzureUserDelegation(t *testing.T) {
	p := testpeer.AzuriteOAuth(t)
	ctr := p.Container(t)
	be, err := azureblob.Open(context.Background(), azureblob.Config{
		Account: p.Account, Container: ctr, Endpoint: p.Endpoint,
		Credential: staticToken{testpeer.AzuriteToken(time.Now())}, HTTPClient: p.Client(),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	e := &env{peer: p, container: ctr, be: be, client: p.Client(),
		bucket: storage.Open(be, &signet.Connector{Backend: signet.BackendAzure, Bucket: ctr})}
	e.requireVerifies(t)

	u := e.sign(t, http.MethodPut, "ud/object", nil)
	q, _ := url.ParseQuery(u.URL[strings.IndexByte(u.URL, '?')+1:])
	if q.Get("skoid") == "" || q.Get("spr") != "https" {
		t.Errorf("a user-delegation SAS over https wants skoid and spr=https; query has skoid %q, spr %q", q.Get("skoid"), q.Get("spr"))
	}
	body := randomBytes(5000)
	if st, b, _ := e.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusCreated {
		t.Fatalf("PUT answered %d: %s", st, b)
	}
	if st, got, _ := e.get(t, "ud/object"); st != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("GET answered %d with %d bytes", st, len(got))
	}
	get := e.sign(t, http.MethodGet, "ud/object", nil)
	if st, _, _ := e.do(t, http.MethodPut, get.URL, u.Headers, body); st != http.StatusForbidden {
		t.Errorf("PUT with a read SAS answered %d, want 403", st)
	}
	if st, _, _ := e.do(t, get.Method, withParam(t, get.URL, "ske", time.Now().Add(30*24*time.Hour).UTC().Format("2006-01-02T15:04:05Z")), nil, nil); st != http.StatusForbidden {
		t.Errorf("GET with the key's expiry altered answered %d, want 403", st)
	}

	// Honest expiry: a 7-day URL is cut to the key's expiry.
	now := time.Now()
	long, err := e.bucket.SignedURL(context.Background(), "ud/object", &driver.SignOptions{
		Method: http.MethodGet, Now: now, Expires: now.Truncate(time.Second).Add(signet.MaxExpiry), Size: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	lq, _ := url.ParseQuery(long.URL[strings.IndexByte(long.URL, '?')+1:])
	ske, err := time.Parse(time.RFC3339, lq.Get("ske"))
	if err != nil {
		t.Fatalf("ske %q: %v", lq.Get("ske"), err)
	}
	if !long.Expires.Before(now.Add(signet.MaxExpiry)) || long.Expires.After(ske) || lq.Get("se") != long.Expires.UTC().Format("2006-01-02T15:04:05Z") {
		t.Errorf("a 7-day URL: Expires %v, se %s, key expiry %v; want Expires = se <= key expiry < 7 days", long.Expires, lq.Get("se"), ske)
	}
	if st, _, _ := e.do(t, long.Method, long.URL, nil, nil); st != http.StatusOK {
		t.Errorf("GET with the shortened URL answered %d, want 200", st)
	}

	// Chunked uploads work with Entra ID too.
	up := e.newUpload(t, "ud/chunked", randomBytes(6<<20), storage.MinPartSize, "text/plain", nil)
	up.putParts(t, 1, 2)
	if err := up.complete(up.parts(t), nil); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
}
