// Package storagetest is the conformance suite every blob store driver runs
// against a real server. It goes through the portable layer
// (storage.Bucket) and uses the signed URLs with a plain HTTP client that
// holds no credentials, so it checks what clients will see.
//
// Before anything else the suite proves that the store rejects tampered
// URLs; a store (or emulator) that accepts one fails the whole run as an
// invalid environment, so a server that verifies nothing can never turn the
// suite green.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Harness describes the store under test.
//
// A capability flag that is false means the driver must refuse the
// corresponding option with signet.Unimplemented, and the suite checks that
// it does.
type Harness struct {
	// Backend is the driver under test. Required.
	Backend driver.Backend
	// Name is the backend's name, as in a connector ("s3", "local").
	Name string
	// Bucket is an existing bucket the driver may write to. Required.
	Bucket string
	// Prefix is the connector prefix ("" or ending in "/"). The suite
	// writes below Prefix + "storagetest-<random>/" and deletes nothing.
	Prefix string
	// Client performs the signed requests. It must hold no credentials.
	// http.DefaultClient when nil.
	Client *http.Client
	// Now is the store's clock; time.Now when nil. The expiry check waits in
	// real time, so Now must follow the real clock.
	Now func() time.Time

	// PutStatus is the status the store answers a successful PUT (an
	// upload or a part) with: 0 means 200 OK, as S3 answers; Azure answers
	// 201 Created. The suite requires exactly that status and reports it
	// to its checks as 200, so a store answering any other 2xx fails.
	PutStatus int
	// ExpiredStatus is the status the store refuses an expired URL with:
	// 0 means 403 Forbidden, as S3 (AccessDenied) and Azure
	// (AuthenticationFailed) answer; GCS answers 400 Bad Request
	// (ExpiredToken). The suite requires exactly that status.
	ExpiredStatus int

	// Multipart: the backend implements driver.Multipart.
	Multipart bool
	// PartETag, when not nil, gives the ETag of an uploaded part from its
	// signed URL and the store's answer, for stores whose part PUT
	// answers none (Azure's Put Block; the driver names the block in the
	// URL). The suite then requires the answer to carry no ETag and
	// ListParts to report exactly this one. When nil, a part PUT must
	// answer a non-empty ETag header, as S3's UploadPart does.
	PartETag func(partURL string, answer http.Header) string
	// PartsOutliveUpload: a part URL of an unknown or aborted upload still
	// stores its bytes (Azure stages a block on the blob whatever the
	// upload), or cannot be signed at all (InvalidPart). The suite then
	// checks that such a part revives nothing (the upload stays NotFound
	// and no object appears) instead of requiring a 404 for its PUT, as
	// S3 answers (NoSuchUpload).
	PartsOutliveUpload bool
	// MultipartContentType and MultipartChecksum: CompleteMultipart applies
	// the upload's content type and verifies a whole-object SHA-256 even
	// though a single PUT URL cannot bind them (Azure). They count as true
	// when BindsContentType, respectively BindsChecksum, is.
	MultipartContentType bool
	MultipartChecksum    bool
	// BindsContentType, BindsSize, BindsChecksum, BindsClientPrefix: the
	// store enforces that binding of a signed URL.
	BindsContentType  bool
	BindsSize         bool
	BindsChecksum     bool
	BindsClientPrefix bool
	// ClientNetwork is a network holding the address the store sees for
	// Client; 127.0.0.0/8 when not valid. Used when BindsClientPrefix.
	ClientNetwork netip.Prefix
}

// suite is one run of the conformance suite.
type suite struct {
	h      *Harness
	b      *storage.Bucket
	client *http.Client
	now    func() time.Time
	base   string // key prefix of this run
}

// putStatus is the status of a successful PUT to the store.
func (h *Harness) putStatus() int {
	if h.PutStatus == 0 {
		return http.StatusOK
	}
	return h.PutStatus
}

// expiredStatus is the status of a refused expired URL.
func (h *Harness) expiredStatus() int {
	if h.ExpiredStatus == 0 {
		return http.StatusForbidden
	}
	return h.ExpiredStatus
}

func (h *Harness) multipartContentType() bool { return h.BindsContentType || h.MultipartContentType }
func (h *Harness) multipartChecksum() bool    { return h.BindsChecksum || h.MultipartChecksum }

// Run runs the conformance suite against h. It calls t.Fatal when the
// environment is unusable, in particular when the store accepts a tampered
// URL ("invalid environment: store accepted a tampered URL").
func Run(t *testing.T, h *Harness) {
	if h.Backend == nil || h.Bucket == "" {
		t.Fatal("storagetest: Harness needs a Backend and a Bucket")
	}
	s := &suite{
		h:      h,
		b:      storage.Open(h.Backend, &signet.Connector{Backend: h.Name, Bucket: h.Bucket, Prefix: h.Prefix}),
		client: h.Client,
		now:    h.Now,
		base:   "storagetest-" + randomHex(8) + "/",
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.checkTamperRejected(t)

	t.Run("PutGet", s.testPutGet)
	t.Run("Head", s.testHead)
	t.Run("Range", s.testRange)
	t.Run("ErrNotFound", s.testNotFound)
	t.Run("ErrWrongMethod", s.testWrongMethod)
	t.Run("ErrExpired", s.testExpired)
	t.Run("ContentType", s.testContentType)
	t.Run("Size", s.testSize)
	t.Run("Checksum", s.testChecksum)
	t.Run("ClientPrefix", s.testClientPrefix)
	t.Run("Multipart", s.testMultipart)
	t.Run("List", s.testList)
	t.Run("Stat", s.testStat)
}

// checkTamperRejected proves the store verifies signatures: a PUT with a
// flipped signature character writes nothing, and a GET of an existing
// object with a flipped signature or with another signed key is refused.
func (s *suite) checkTamperRejected(t *testing.T) {
	t.Helper()
	key, other := s.base+"tamper", s.base+"tamper-other"
	invalid := func(what string, status int) {
		t.Fatalf("invalid environment: store accepted a tampered URL (%s answered %d, want 403)", what, status)
	}

	put := s.sign(t, http.MethodPut, key, nil)
	tampered := tamperSignature(t, put.URL)
	if st, _, _ := s.do(t, put.Method, tampered, put.Headers, []byte("tampered")); st != http.StatusForbidden {
		invalid("PUT with a flipped signature character", st)
	}
	for _, k := range []string{key, other} {
		put := s.sign(t, http.MethodPut, k, nil)
		if st, _, _ := s.do(t, put.Method, put.URL, put.Headers, []byte(k)); st != http.StatusOK {
			t.Fatalf("setup: PUT through a valid URL answered %d", st)
		}
	}
	get := s.sign(t, http.MethodGet, key, nil)
	if st, body, _ := s.do(t, get.Method, get.URL, get.Headers, nil); st != http.StatusOK || string(body) != key {
		t.Fatalf("setup: GET through a valid URL answered %d", st)
	}
	if st, _, _ := s.do(t, get.Method, tamperSignature(t, get.URL), get.Headers, nil); st != http.StatusForbidden {
		invalid("GET with a flipped signature character", st)
	}
	// Point the URL at another existing object: the key is signed.
	u, err := url.Parse(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.RawPath = ""
	u.Path = strings.TrimSuffix(u.Path, "tamper") + "tamper-other"
	if st, _, _ := s.do(t, get.Method, u.String(), get.Headers, nil); st != http.StatusForbidden {
		invalid("GET of another key with the same signature", st)
	}
}

// tamperSignature flips the first character of the URL's signature
// parameter (the query parameter named "sig" or containing "signature").
func tamperSignature(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("setup: signed URL does not parse: %v", err)
	}
	pairs := strings.Split(u.RawQuery, "&")
	for i, p := range pairs {
		name, val, _ := strings.Cut(p, "=")
		n := strings.ToLower(name)
		if (n != "sig" && !strings.Contains(n, "signature")) || val == "" {
			continue
		}
		switch {
		case strings.HasPrefix(val, "%") && len(val) >= 3:
			val = "a" + val[3:]
		case val[0] == 'a':
			val = "b" + val[1:]
		default:
			val = "a" + val[1:]
		}
		pairs[i] = name + "=" + val
		u.RawQuery = strings.Join(pairs, "&")
		return u.String()
	}
	t.Fatal("setup: cannot find the signature parameter of the signed URL")
	return ""
}

// sign returns a URL for method on key (relative to the run's base key),
// valid for 15 minutes, with no bindings unless edit sets them.
func (s *suite) sign(t *testing.T, method, key string, edit func(*driver.SignOptions)) *driver.SignedURL {
	t.Helper()
	u, err := s.signErr(method, key, edit)
	if err != nil {
		t.Fatalf("setup: signing %s %s: %v", method, key, err)
	}
	return u
}

func (s *suite) signErr(method, key string, edit func(*driver.SignOptions)) (*driver.SignedURL, error) {
	now := s.now()
	o := &driver.SignOptions{
		Method:  method,
		Now:     now,
		Expires: now.Truncate(time.Second).Add(15 * time.Minute),
		Size:    -1,
		GrantID: "storagetest",
	}
	if edit != nil {
		edit(o)
	}
	return s.b.SignedURL(context.Background(), key, o)
}

// do performs a request and returns its status, body and header. headers
// are sent as given; a "" value removes a header. A PUT answered with
// Harness.PutStatus reports 200 (see doErr).
func (s *suite) do(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	st, b, h, err := s.doErr(method, rawURL, headers, body)
	if err != nil {
		t.Fatalf("%s request failed: %v", method, err)
	}
	return st, b, h
}

func (s *suite) doErr(method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header, error) {
	st, b, h, err := send(s.client, method, rawURL, headers, body)
	if err != nil {
		return st, b, h, err
	}
	// A PUT that succeeded with the store's own success status reads as
	// 200 to the checks; 200 itself, from a store that should answer
	// otherwise, reads as 299 and fails them.
	if method == http.MethodPut && s.h.putStatus() != http.StatusOK {
		switch st {
		case s.h.putStatus():
			st = http.StatusOK
		case http.StatusOK:
			st = 299
		}
	}
	return st, b, h, nil
}

// Do sends a request with client c, which must hold no credentials, and
// returns the answer's status, body and header, stopping the test if
// there is none. headers are sent as given, except that a "" value
// removes a header, Content-Length comes from the body and Host sets the
// request's host.
func Do(t testing.TB, c *http.Client, method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	st, b, h, err := send(c, method, rawURL, headers, body)
	if err != nil {
		t.Fatalf("%s request failed: %v", method, err)
	}
	return st, b, h
}

// send is Do returning its error.
func send(c *http.Client, method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range headers {
		switch {
		case strings.EqualFold(k, "Content-Length"):
			// Set by the client from the body.
		case strings.EqualFold(k, "Host"):
			req.Host = v
		case v == "":
			req.Header.Del(k)
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// put uploads body to key through a fresh URL and fails the test on error.
func (s *suite) put(t *testing.T, key string, body []byte) {
	t.Helper()
	u := s.sign(t, http.MethodPut, key, nil)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusOK {
		t.Fatalf("setup: PUT %s answered %d", key, st)
	}
}

// get downloads key through a fresh URL.
func (s *suite) get(t *testing.T, key string) (int, []byte, http.Header) {
	t.Helper()
	u := s.sign(t, http.MethodGet, key, nil)
	return s.do(t, u.Method, u.URL, u.Headers, nil)
}

// wantAbsent checks that key holds no object.
func (s *suite) wantAbsent(t *testing.T, key string) {
	t.Helper()
	if st, _, _ := s.get(t, key); st != http.StatusNotFound {
		t.Errorf("GET %s after a refused upload answered %d, want 404 (an object was left behind)", key, st)
	}
}

// WantCode reports an error unless err carries code.
func WantCode(t testing.TB, what string, err error, code signet.Code) {
	t.Helper()
	if got := signet.ErrorCode(err); got != code {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, code)
	}
}

func want4xx(t *testing.T, what string, status int) {
	t.Helper()
	if status < 400 || status > 499 {
		t.Errorf("%s answered %d, want a 4xx refusal", what, status)
	}
}

func (s *suite) testPutGet(t *testing.T) {
	key := s.base + "put-get/" + "a b%2e+ü.bin"
	body := RandomBytes(64 << 10)
	u := s.sign(t, http.MethodPut, key, nil)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusOK {
		t.Fatalf("PUT answered %d", st)
	}
	st, got, _ := s.get(t, key)
	if st != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("GET answered %d with %d bytes, want 200 with the %d bytes put", st, len(got), len(body))
	}
	// Replacing an object works and is seen whole.
	body2 := RandomBytes(1000)
	s.put(t, key, body2)
	if st, got, _ := s.get(t, key); st != http.StatusOK || !bytes.Equal(got, body2) {
		t.Errorf("GET after overwrite answered %d with %d bytes, want 200 with %d", st, len(got), len(body2))
	}
}

func (s *suite) testHead(t *testing.T) {
	key := s.base + "head"
	s.put(t, key, make([]byte, 1234))
	u := s.sign(t, http.MethodHead, key, nil)
	st, body, h := s.do(t, u.Method, u.URL, u.Headers, nil)
	if st != http.StatusOK || len(body) != 0 || h.Get("Content-Length") != "1234" {
		t.Errorf("HEAD answered %d, %d body bytes, Content-Length %q; want 200, 0, 1234", st, len(body), h.Get("Content-Length"))
	}
	u = s.sign(t, http.MethodHead, s.base+"head-missing", nil)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, nil); st != http.StatusNotFound {
		t.Errorf("HEAD of a missing key answered %d, want 404", st)
	}
}

func (s *suite) testRange(t *testing.T) {
	key := s.base + "range"
	body := RandomBytes(4096)
	s.put(t, key, body)
	u := s.sign(t, http.MethodGet, key, nil)
	hdr := map[string]string{"Range": "bytes=100-199"}
	for k, v := range u.Headers {
		hdr[k] = v
	}
	st, got, _ := s.do(t, u.Method, u.URL, hdr, nil)
	if st != http.StatusPartialContent || !bytes.Equal(got, body[100:200]) {
		t.Errorf("ranged GET answered %d with %d bytes, want 206 with bytes 100-199", st, len(got))
	}
}

func (s *suite) testNotFound(t *testing.T) {
	if st, _, _ := s.get(t, s.base+"missing/object"); st != http.StatusNotFound {
		t.Errorf("GET of a missing key answered %d, want 404", st)
	}
}

func (s *suite) testWrongMethod(t *testing.T) {
	key := s.base + "method"
	body := []byte("original")
	s.put(t, key, body)
	get := s.sign(t, http.MethodGet, key, nil)
	put := s.sign(t, http.MethodPut, key, nil)
	// The PUT carries the headers a PUT URL asks for (Azure's
	// x-ms-blob-type), so that the store judges the URL, not a missing
	// header.
	if st, _, _ := s.do(t, http.MethodPut, get.URL, put.Headers, []byte("overwritten")); st != http.StatusForbidden {
		t.Errorf("PUT with a GET URL answered %d, want 403", st)
	}
	if st, _, _ := s.do(t, http.MethodGet, put.URL, put.Headers, nil); st != http.StatusForbidden {
		t.Errorf("GET with a PUT URL answered %d, want 403", st)
	}
	if st, got, _ := s.get(t, key); st != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("object changed by a refused request: GET answered %d %q", st, got)
	}
}

// testExpired waits in real time: cloud stores check expiry with their own
// clock.
func (s *suite) testExpired(t *testing.T) {
	key := s.base + "expired"
	s.put(t, key, []byte("x"))
	var expires time.Time
	u := s.sign(t, http.MethodGet, key, func(o *driver.SignOptions) {
		expires = o.Now.Truncate(time.Second).Add(2 * time.Second)
		o.Expires = expires
	})
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, nil); st != http.StatusOK {
		t.Errorf("GET before expiry answered %d, want 200", st)
	}
	time.Sleep(time.Until(expires) + 1500*time.Millisecond)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, nil); st != s.h.expiredStatus() {
		t.Errorf("GET after expiry answered %d, want %d", st, s.h.expiredStatus())
	}
}

func (s *suite) testContentType(t *testing.T) {
	key := s.base + "content-type"
	const ct = "text/plain; charset=utf-8"
	bind := func(o *driver.SignOptions) { o.ContentType = ct }
	u := s.signBinding(t, "content type", s.h.BindsContentType, key, bind)
	if u == nil {
		return
	}
	if u.Headers["Content-Type"] != ct {
		t.Errorf("signed URL headers %v, want Content-Type %q", u.Headers, ct)
	}
	if st, _, _ := s.do(t, u.Method, u.URL, map[string]string{"Content-Type": "text/html"}, []byte("hi")); st != http.StatusForbidden {
		t.Errorf("PUT with another Content-Type answered %d, want 403", st)
	}
	// A missing signed header is refused, but stores differ on the status:
	// AWS S3 answers 403, MinIO 400 (both with code AccessDenied).
	if st, _, _ := s.do(t, u.Method, u.URL, map[string]string{"Content-Type": ""}, []byte("hi")); st < 400 || st >= 500 {
		t.Errorf("PUT without Content-Type answered %d, want a 4xx refusal", st)
	}
	s.wantAbsent(t, key)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, []byte("hi")); st != http.StatusOK {
		t.Errorf("PUT with the signed Content-Type answered %d, want 200", st)
	}
	if st, _, h := s.get(t, key); st != http.StatusOK || h.Get("Content-Type") != ct {
		t.Errorf("GET answered %d with Content-Type %q, want 200 and %q", st, h.Get("Content-Type"), ct)
	}
}

// signBinding signs a PUT of key with bind if the store can bind it
// (binds). If it cannot, it checks that signing is refused with
// Unimplemented and returns nil.
func (s *suite) signBinding(t *testing.T, what string, binds bool, key string, bind func(*driver.SignOptions)) *driver.SignedURL {
	t.Helper()
	if !binds {
		_, err := s.signErr(http.MethodPut, key, bind)
		WantCode(t, "signing a "+what+" binding", err, signet.Unimplemented)
		return nil
	}
	return s.sign(t, http.MethodPut, key, bind)
}

func (s *suite) testSize(t *testing.T) {
	key := s.base + "size"
	body := RandomBytes(100)
	bind := func(o *driver.SignOptions) { o.Size = int64(len(body)) }
	u := s.signBinding(t, "size", s.h.BindsSize, key, bind)
	if u == nil {
		return
	}
	st, _, _ := s.do(t, u.Method, u.URL, u.Headers, append(bytes.Clone(body), 'x'))
	want4xx(t, "PUT of a body larger than the signed size", st)
	st, _, _ = s.do(t, u.Method, u.URL, u.Headers, body[:99])
	want4xx(t, "PUT of a body smaller than the signed size", st)
	s.wantAbsent(t, key)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusOK {
		t.Errorf("PUT of the signed size answered %d, want 200", st)
	}
}

func (s *suite) testChecksum(t *testing.T) {
	key := s.base + "checksum"
	body := RandomBytes(1000)
	sum := sha256.Sum256(body)
	bind := func(o *driver.SignOptions) { o.SHA256 = sum[:] }
	u := s.signBinding(t, "sha256", s.h.BindsChecksum, key, bind)
	if u == nil {
		return
	}
	other := bytes.Clone(body)
	other[500] ^= 1
	st, _, _ := s.do(t, u.Method, u.URL, u.Headers, other)
	want4xx(t, "PUT of a body that does not match the signed sha256", st)
	s.wantAbsent(t, key)
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusOK {
		t.Errorf("PUT of the signed body answered %d, want 200", st)
	}
}

func (s *suite) testClientPrefix(t *testing.T) {
	key := s.base + "client-prefix"
	outside := netip.MustParsePrefix("192.0.2.0/24") // TEST-NET-1, never a client here
	if !s.h.BindsClientPrefix {
		_, err := s.signErr(http.MethodGet, key, func(o *driver.SignOptions) { o.ClientPrefix = outside })
		WantCode(t, "signing a client network binding", err, signet.Unimplemented)
		return
	}
	inside := s.h.ClientNetwork
	if !inside.IsValid() {
		inside = netip.MustParsePrefix("127.0.0.0/8")
	}
	s.put(t, key, []byte("x"))
	u := s.sign(t, http.MethodGet, key, func(o *driver.SignOptions) { o.ClientPrefix = outside })
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, nil); st != http.StatusForbidden {
		t.Errorf("GET from outside the signed network answered %d, want 403", st)
	}
	u = s.sign(t, http.MethodGet, key, func(o *driver.SignOptions) { o.ClientPrefix = inside })
	if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, nil); st != http.StatusOK {
		t.Errorf("GET from inside the signed network %s answered %d, want 200", inside, st)
	}
}

func (s *suite) testMultipart(t *testing.T) {
	ctx := context.Background()
	if !s.h.Multipart {
		_, err := s.b.CreateMultipart(ctx, s.base+"mp", &driver.MultipartOptions{Size: 1, PartSize: 1})
		WantCode(t, "CreateMultipart", err, signet.Unimplemented)
		return
	}
	t.Run("Complete", s.testMultipartComplete)
	t.Run("ErrChecksumMismatch", s.testMultipartChecksum)
	t.Run("Abort", s.testMultipartAbort)
	t.Run("ErrNotFound", s.testMultipartUnknown)
}

// partURL signs a URL for part n of an upload of key.
func (s *suite) partURL(t *testing.T, key, id string, n int, size int64) *driver.SignedURL {
	t.Helper()
	return s.sign(t, http.MethodPut, key, func(o *driver.SignOptions) {
		o.UploadID, o.PartNumber = id, n
		if s.h.BindsSize {
			o.Size = size
		}
	})
}

// create starts an upload of size bytes in parts of partSize.
func (s *suite) create(t *testing.T, key string, size, partSize int64, ct string) (id string, count int) {
	t.Helper()
	ps, count, err := storage.PlanParts(size, partSize)
	if err != nil {
		t.Fatalf("PlanParts: %v", err)
	}
	id, err = s.b.CreateMultipart(context.Background(), key, &driver.MultipartOptions{ContentType: ct, Size: size, PartSize: ps})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	return id, count
}

// putParts uploads parts of data in parallel and returns their ETags.
func (s *suite) putParts(t *testing.T, key, id string, data []byte, partSize int64, numbers []int) map[int]string {
	t.Helper()
	size := int64(len(data))
	type result struct {
		status int
		etag   string // the answer's ETag header
		want   string // with Harness.PartETag, the part's ETag
		err    error
	}
	results := make([]result, len(numbers))
	var wg sync.WaitGroup
	for i, n := range numbers {
		u := s.partURL(t, key, id, n, storage.PartSize(size, partSize, n))
		off := int64(n-1) * partSize
		body := data[off : off+storage.PartSize(size, partSize, n)]
		wg.Go(func() {
			st, _, h, err := s.doErr(u.Method, u.URL, u.Headers, body)
			r := result{status: st, err: err}
			if h != nil {
				r.etag = h.Get("ETag")
				if s.h.PartETag != nil {
					r.want = s.h.PartETag(u.URL, h)
				}
			}
			results[i] = r
		})
	}
	wg.Wait()
	etags := map[int]string{}
	for i, r := range results {
		switch {
		case r.err != nil || r.status != http.StatusOK:
			t.Fatalf("PUT of part %d: status %d, err %v; want %d", numbers[i], r.status, r.err, s.h.putStatus())
		case s.h.PartETag == nil && r.etag == "":
			t.Fatalf("PUT of part %d answered no ETag", numbers[i])
		case s.h.PartETag == nil:
			etags[numbers[i]] = r.etag
		case r.etag != "" || r.want == "":
			t.Fatalf("PUT of part %d: answered ETag %q, ETag from the URL %q; want none answered and one from the URL", numbers[i], r.etag, r.want)
		default:
			etags[numbers[i]] = r.want
		}
	}
	return etags
}

func (s *suite) testMultipartComplete(t *testing.T) {
	ctx := context.Background()
	key := s.base + "multipart/complete.bin"
	const partSize = storage.MinPartSize
	data := RandomBytes(2*partSize + 123457)
	ct := "application/x-storagetest"
	id, count := s.create(t, key, int64(len(data)), partSize, ct)
	if count != 3 {
		t.Fatalf("PlanParts gave %d parts, want 3", count)
	}
	etags := s.putParts(t, key, id, data, partSize, []int{1, 2, 3})

	// Resume: the store lists what it holds.
	parts, err := s.b.ListParts(ctx, key, id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if len(parts) != 3 {
		t.Fatalf("ListParts returned %d parts, want 3", len(parts))
	}
	for i, p := range parts {
		n := i + 1
		wantSize := storage.PartSize(int64(len(data)), partSize, n)
		if p.Number != n || trimQuotes(p.ETag) != trimQuotes(etags[n]) || p.Size != wantSize {
			t.Errorf("ListParts[%d] = %+v, want number %d, ETag %s, size %d", i, p, n, etags[n], wantSize)
		}
	}

	// A wrong ETag is refused and leaves the upload usable.
	bad := append([]driver.Part(nil), parts...)
	bad[1].ETag = `"0123456789abcdef0123456789abcdef"`
	err = s.b.CompleteMultipart(ctx, key, id, bad, nil)
	WantCode(t, "CompleteMultipart with a wrong ETag", err, signet.Invalid)
	err = s.b.CompleteMultipart(ctx, key, id, parts[:2], nil)
	WantCode(t, "CompleteMultipart with a missing part", err, signet.Invalid)

	sum := sha256.Sum256(data)
	var check []byte
	if s.h.multipartChecksum() {
		check = sum[:]
	}
	if err := s.b.CompleteMultipart(ctx, key, id, parts, check); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	st, got, h := s.get(t, key)
	if st != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET of the assembled object answered %d with %d bytes, want 200 with %d", st, len(got), len(data))
	}
	if s.h.multipartContentType() && h.Get("Content-Type") != ct {
		t.Errorf("assembled object has Content-Type %q, want %q", h.Get("Content-Type"), ct)
	}
	_, err = s.b.ListParts(ctx, key, id)
	WantCode(t, "ListParts after completion", err, signet.NotFound)
}

func (s *suite) testMultipartChecksum(t *testing.T) {
	ctx := context.Background()
	key := s.base + "multipart/checksum.bin"
	data := RandomBytes(1 << 20)
	id, _ := s.create(t, key, int64(len(data)), 0, "")
	etags := s.putParts(t, key, id, data, int64(len(data)), []int{1})
	parts := []driver.Part{{Number: 1, ETag: etags[1], Size: int64(len(data))}}
	wrong := sha256.Sum256([]byte("not the data"))
	err := s.b.CompleteMultipart(ctx, key, id, parts, wrong[:])
	if !s.h.multipartChecksum() {
		WantCode(t, "CompleteMultipart with a sha256", err, signet.Unimplemented)
	} else {
		WantCode(t, "CompleteMultipart with a wrong sha256", err, signet.ChecksumMismatch)
		s.wantAbsent(t, key)
	}
	s.b.AbortMultipart(ctx, key, id)
}

func (s *suite) testMultipartAbort(t *testing.T) {
	ctx := context.Background()
	key := s.base + "multipart/abort.bin"
	data := RandomBytes(1000)
	id, _ := s.create(t, key, int64(len(data)), 0, "")
	s.putParts(t, key, id, data, int64(len(data)), []int{1})
	if err := s.b.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	_, err := s.b.ListParts(ctx, key, id)
	WantCode(t, "ListParts after abort", err, signet.NotFound)
	s.putEndedPart(t, "an aborted upload", key, id, data)
	err = s.b.AbortMultipart(ctx, key, id)
	WantCode(t, "AbortMultipart twice", err, signet.NotFound)
	s.wantAbsent(t, key)
}

func (s *suite) testMultipartUnknown(t *testing.T) {
	ctx := context.Background()
	key := s.base + "multipart/unknown.bin"
	id := randomHex(16)
	_, err := s.b.ListParts(ctx, key, id)
	WantCode(t, "ListParts of an unknown upload", err, signet.NotFound)
	err = s.b.AbortMultipart(ctx, key, id)
	WantCode(t, "AbortMultipart of an unknown upload", err, signet.NotFound)
	err = s.b.CompleteMultipart(ctx, key, id, []driver.Part{{Number: 1, ETag: `"x"`}}, nil)
	WantCode(t, "CompleteMultipart of an unknown upload", err, signet.NotFound)
	s.putEndedPart(t, "an unknown upload", key, id, []byte("x"))

	// Another key's upload id is unknown for this key.
	other := s.base + "multipart/other.bin"
	oid, _ := s.create(t, other, 10, 0, "")
	defer s.b.AbortMultipart(ctx, other, oid)
	_, err = s.b.ListParts(ctx, key, oid)
	WantCode(t, "ListParts with another key's upload id", err, signet.NotFound)
	err = s.b.AbortMultipart(ctx, key, oid)
	WantCode(t, "AbortMultipart with another key's upload id", err, signet.NotFound)
	if _, err := s.b.ListParts(ctx, other, oid); err != nil {
		t.Errorf("the other key's upload was disturbed: ListParts: %v", err)
	}
}

// putEndedPart sends part 1 of upload id of key, which does not exist
// (what says why), and checks that the store refuses it with 404, or, with
// Harness.PartsOutliveUpload, that the part revives neither the upload nor
// an object.
func (s *suite) putEndedPart(t *testing.T, what, key, id string, data []byte) {
	t.Helper()
	ctx := context.Background()
	if !s.h.PartsOutliveUpload {
		u := s.partURL(t, key, id, 1, int64(len(data)))
		if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, data); st != http.StatusNotFound {
			t.Errorf("PUT of a part of %s answered %d, want 404", what, st)
		}
		return
	}
	u, err := s.signErr(http.MethodPut, key, func(o *driver.SignOptions) { o.UploadID, o.PartNumber = id, 1 })
	switch {
	case signet.ErrorCode(err) == signet.InvalidPart:
		// Refused before any byte moves.
	case err != nil:
		t.Errorf("signing a part URL of %s: %v, want a URL or InvalidPart", what, err)
	default:
		st, _, _ := s.do(t, u.Method, u.URL, u.Headers, data)
		if st != http.StatusOK && st != http.StatusNotFound {
			t.Errorf("PUT of a part of %s answered %d, want %d (stored, to no effect) or 404", what, st, s.h.putStatus())
		}
	}
	_, err = s.b.ListParts(ctx, key, id)
	WantCode(t, "ListParts after a part PUT of "+what, err, signet.NotFound)
	err = s.b.CompleteMultipart(ctx, key, id, []driver.Part{{Number: 1, ETag: `"x"`, Size: int64(len(data))}}, nil)
	WantCode(t, "CompleteMultipart after a part PUT of "+what, err, signet.NotFound)
	s.wantAbsent(t, key)
}

func trimQuotes(s string) string { return strings.Trim(s, `"`) }

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(RandomBytes(n)) }
