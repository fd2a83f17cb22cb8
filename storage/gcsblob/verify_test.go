package gcsblob_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// vectorsFile returns the path of a file below ../shared/vectors beside
// the repository, or skips (fails when SIGNET_TEST_PEERS=require).
func vectorsFile(t testing.TB, rel string) string {
	t.Helper()
	return testpeer.Vectors(t, rel)
}

// serviceAccount returns the conformance file's inactive dummy key file and
// its public key.
func serviceAccount(t testing.TB) ([]byte, string, *rsa.PublicKey) {
	t.Helper()
	data, err := os.ReadFile(vectorsFile(t, "googleapis-conformance-tests/storage/v1/test_service_account.not-a-test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return data, f.ClientEmail, &k.(*rsa.PrivateKey).PublicKey
}

// verifier checks GCS V4 query-string signatures of requests as GCS does,
// written from Google's description of V4 signing independently of the
// driver's signer: the canonical request is rebuilt from the request as it
// arrives (method, escaped path, query without the signature, the signed
// headers' values as sent), and the signature is checked with the RSA
// public key or recomputed from the HMAC secret.
type verifier struct {
	pub        *rsa.PublicKey
	hmacSecret string
	now        func() time.Time
}

var errSignature = errors.New("signature does not match")

// verify returns nil when r carries a valid, unexpired signature.
func (v *verifier) verify(r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(q.Get("X-Goog-Signature"))
	if err != nil || len(sig) == 0 {
		return errSignature
	}
	alg, cred, stamp := q.Get("X-Goog-Algorithm"), q.Get("X-Goog-Credential"), q.Get("X-Goog-Date")
	t, err := time.Parse("20060102T150405Z", stamp)
	if err != nil {
		return errSignature
	}
	exp, err := strconv.ParseInt(q.Get("X-Goog-Expires"), 10, 64)
	if err != nil || exp < 1 || exp > 604800 {
		return errSignature
	}
	if v.now().After(t.Add(time.Duration(exp) * time.Second)) {
		return errors.New("expired")
	}
	scope := stamp[:8] + "/auto/storage/goog4_request"
	if _, s, ok := strings.Cut(cred, "/"); !ok || s != scope {
		return errSignature
	}

	// Canonical query: all but the signature, RFC 3986 encoded, sorted.
	var pairs []string
	for name, vals := range q {
		if name == "X-Goog-Signature" {
			continue
		}
		for _, val := range vals {
			pairs = append(pairs, enc(name)+"="+enc(val))
		}
	}
	sort.Strings(pairs)
	// Canonical headers: those named in X-Goog-SignedHeaders, as sent.
	var hdrs strings.Builder
	for _, name := range strings.Split(q.Get("X-Goog-SignedHeaders"), ";") {
		var val string
		switch name {
		case "host":
			val = r.Host
			if h, _, ok := strings.Cut(val, ":"); ok {
				val = h
			}
		case "content-length":
			if r.ContentLength < 0 {
				return errSignature
			}
			val = strconv.FormatInt(r.ContentLength, 10)
		default:
			if len(r.Header.Values(name)) == 0 {
				return errSignature
			}
			val = strings.Join(strings.Fields(r.Header.Get(name)), " ")
		}
		hdrs.WriteString(name + ":" + val + "\n")
	}
	cr := r.Method + "\n" + r.URL.EscapedPath() + "\n" + strings.Join(pairs, "&") + "\n" +
		hdrs.String() + "\n" + q.Get("X-Goog-SignedHeaders") + "\nUNSIGNED-PAYLOAD"
	crSum := sha256.Sum256([]byte(cr))
	sts := alg + "\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])

	switch alg {
	case "GOOG4-RSA-SHA256":
		if v.pub == nil {
			return errSignature
		}
		d := sha256.Sum256([]byte(sts))
		if rsa.VerifyPKCS1v15(v.pub, crypto.SHA256, d[:], sig) != nil {
			return errSignature
		}
	case "GOOG4-HMAC-SHA256":
		if v.hmacSecret == "" {
			return errSignature
		}
		mac := func(k []byte, s string) []byte {
			m := hmac.New(sha256.New, k)
			m.Write([]byte(s))
			return m.Sum(nil)
		}
		k := mac(mac(mac(mac([]byte("GOOG4"+v.hmacSecret), stamp[:8]), "auto"), "storage"), "goog4_request")
		if !hmac.Equal(mac(k, sts), sig) {
			return errSignature
		}
	default:
		return errSignature
	}
	return nil
}

// enc is RFC 3986 percent-encoding of everything but unreserved characters.
func enc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// verifyingStore is an HTTP server that only checks signatures: 200 for a
// request that verifies, 403 otherwise. It stands in for GCS's signature
// check, not for GCS.
func verifyingStore(t *testing.T, v *verifier) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.verify(r); err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s
}

// signTestBucket signs o with be for bucket test-bucket under grant
// grant-1, valid for an hour from now.
func signTestBucket(t *testing.T, be *gcsblob.Backend, o driver.SignOptions) *driver.SignedURL {
	t.Helper()
	now := time.Now()
	o.Bucket, o.Now, o.Expires, o.GrantID = "test-bucket", now, now.Truncate(time.Second).Add(time.Hour), "grant-1"
	u, err := be.SignedURL(context.Background(), &o)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	return u
}

// status sends a request as send does and returns the answer's status.
func status(t *testing.T, method, rawURL string, h map[string]string, body []byte) int {
	t.Helper()
	st, _, _ := send(t, method, rawURL, h, body)
	return st
}

// flipSignature changes the first character of the X-Goog-Signature in
// rawURL.
func flipSignature(rawURL string) string {
	i := strings.Index(rawURL, "X-Goog-Signature=") + len("X-Goog-Signature=")
	c := byte('0')
	if rawURL[i] == '0' {
		c = '1'
	}
	return rawURL[:i] + string(c) + rawURL[i+1:]
}

// TestVerifier checks the driver's URLs, RSA and HMAC, with the verifier:
// the request the URL was signed for verifies; each alteration does not.
func TestVerifier(t *testing.T) {
	keyFile, _, pub := serviceAccount(t)
	const secret = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
	for _, kind := range []string{"RSA", "HMAC"} {
		t.Run(kind, func(t *testing.T) {
			v := &verifier{pub: pub, hmacSecret: secret, now: time.Now}
			srv := verifyingStore(t, v)
			cfg := gcsblob.Config{Bucket: "test-bucket", Endpoint: srv.URL}
			if kind == "RSA" {
				cfg.CredentialsJSON = keyFile
			} else {
				cfg.HMACAccessID, cfg.HMACSecret = "GOOG1EXAMPLEACCESSID", secret
			}
			be, err := gcsblob.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			sign := func(o driver.SignOptions) *driver.SignedURL {
				t.Helper()
				return signTestBucket(t, be, o)
			}
			const key = "dir/a b%2e+ü&x.bin"
			get := sign(driver.SignOptions{Method: http.MethodGet, Key: key, Size: -1})
			if st := status(t, http.MethodGet, get.URL, nil, nil); st != http.StatusOK {
				t.Fatalf("GET with its URL answered %d, want 200 (the URL does not verify)", st)
			}
			body := []byte("0123456789")
			put := sign(driver.SignOptions{Method: http.MethodPut, Key: key, Size: 10, ContentType: "text/plain"})
			if put.Headers["Content-Type"] != "text/plain" || put.Headers["Content-Length"] != "10" {
				t.Errorf("PUT headers %v, want Content-Type and Content-Length", put.Headers)
			}
			if st := status(t, http.MethodPut, put.URL, put.Headers, body); st != http.StatusOK {
				t.Errorf("PUT with its URL answered %d, want 200", st)
			}
			part := sign(driver.SignOptions{Method: http.MethodPut, Key: key, Size: 10, UploadID: "ABPnzm5-upload_id", PartNumber: 3})
			if st := status(t, http.MethodPut, part.URL, part.Headers, body); st != http.StatusOK {
				t.Errorf("PUT of a part with its URL answered %d, want 200", st)
			}
			pu, _ := url.Parse(part.URL)
			if pu.Query().Get("partNumber") != "3" || pu.Query().Get("uploadId") != "ABPnzm5-upload_id" {
				t.Errorf("part URL query %v lacks partNumber and uploadId", pu.Query())
			}

			for _, tc := range []struct {
				what, method, url string
				headers           map[string]string
				body              []byte
			}{
				{"a flipped signature", http.MethodGet, flipSignature(get.URL), nil, nil},
				{"another key", http.MethodGet, strings.Replace(get.URL, "/dir/", "/dir2/", 1), nil, nil},
				{"another method", http.MethodDelete, get.URL, nil, nil},
				{"a longer lifetime", http.MethodGet, strings.Replace(get.URL, "X-Goog-Expires=3600", "X-Goog-Expires=7200", 1), nil, nil},
				{"the grant removed", http.MethodGet, strings.Replace(get.URL, "&x-signet-grant=grant-1", "", 1), nil, nil},
				{"another Content-Type", http.MethodPut, put.URL, map[string]string{"Content-Type": "text/html"}, body},
				{"no Content-Type", http.MethodPut, put.URL, nil, body},
				{"a longer body", http.MethodPut, put.URL, put.Headers, append(body, 'x')},
				{"another part number", http.MethodPut, strings.Replace(part.URL, "partNumber=3", "partNumber=4", 1), part.Headers, body},
			} {
				if st := status(t, tc.method, tc.url, tc.headers, tc.body); st != http.StatusForbidden {
					t.Errorf("request with %s answered %d, want 403", tc.what, st)
				}
			}

			// Expiry: the verifier's clock two hours on.
			v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
			if st := status(t, http.MethodGet, get.URL, nil, nil); st != http.StatusForbidden {
				t.Errorf("GET after expiry answered %d, want 403", st)
			}
		})
	}
}

// TestSignedURLErrors checks what the driver refuses.
func TestSignedURLErrors(t *testing.T) {
	be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "b-1", Prefix: "team/", HMACAccessID: "id", HMACSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sum := sha256.Sum256(nil)
	for _, tc := range []struct {
		what string
		o    driver.SignOptions
		code signet.Code
	}{
		{"sha256", driver.SignOptions{Method: http.MethodPut, Key: "team/k", SHA256: sum[:]}, signet.Unimplemented},
		{"client network", driver.SignOptions{Method: http.MethodGet, Key: "team/k", Size: -1, ClientPrefix: mustPrefix("10.0.0.0/8")}, signet.Unimplemented},
		{"another bucket", driver.SignOptions{Method: http.MethodGet, Bucket: "other", Key: "team/k"}, signet.PermissionDenied},
		{"outside the prefix", driver.SignOptions{Method: http.MethodGet, Key: "k"}, signet.PermissionDenied},
		{"content type on a part", driver.SignOptions{Method: http.MethodPut, Key: "team/k", UploadID: "u", PartNumber: 1, ContentType: "text/plain"}, signet.Invalid},
		{"8 days", driver.SignOptions{Method: http.MethodGet, Key: "team/k", Expires: now.Truncate(time.Second).Add(8 * 24 * time.Hour)}, signet.InvalidExpiry},
		{"DELETE", driver.SignOptions{Method: http.MethodDelete, Key: "team/k"}, signet.Invalid},
	} {
		o := tc.o
		if o.Bucket == "" {
			o.Bucket = "b-1"
		}
		if o.Size == 0 {
			o.Size = -1
		}
		o.Now = now
		if o.Expires.IsZero() {
			o.Expires = now.Truncate(time.Second).Add(time.Hour)
		}
		_, err := be.SignedURL(context.Background(), &o)
		wantCode(t, tc.what, err, tc.code)
	}
}

// TestOpen checks configuration errors.
func TestOpen(t *testing.T) {
	keyFile, _, _ := serviceAccount(t)
	for _, tc := range []struct {
		what string
		cfg  gcsblob.Config
		code signet.Code
	}{
		{"no key: keyless", gcsblob.Config{Bucket: "b-1"}, ""},
		{"keyless as a named account", gcsblob.Config{Bucket: "b-1", ServiceAccount: "s@p.iam.gserviceaccount.com"}, ""},
		{"keyless as a malformed account", gcsblob.Config{Bucket: "b-1", ServiceAccount: "not-an-email"}, signet.Invalid},
		{"a service account with a key file", gcsblob.Config{Bucket: "b-1", CredentialsJSON: keyFile, ServiceAccount: "s@p.iam.gserviceaccount.com"}, signet.Invalid},
		{"a service account with an HMAC key", gcsblob.Config{Bucket: "b-1", HMACAccessID: "a", HMACSecret: "s", ServiceAccount: "s@p.iam.gserviceaccount.com"}, signet.Invalid},
		{"keyless with a bad IAM endpoint", gcsblob.Config{Bucket: "b-1", IAMEndpoint: "ftp://x"}, signet.Invalid},
		{"both keys", gcsblob.Config{Bucket: "b-1", CredentialsJSON: keyFile, HMACAccessID: "a", HMACSecret: "s"}, signet.Invalid},
		{"HMAC without secret", gcsblob.Config{Bucket: "b-1", HMACAccessID: "a"}, signet.Invalid},
		{"not a key file", gcsblob.Config{Bucket: "b-1", CredentialsJSON: []byte(`{"type":"authorized_user"}`)}, signet.Invalid},
		{"bad bucket", gcsblob.Config{Bucket: "B", HMACAccessID: "a", HMACSecret: "s"}, signet.Invalid},
		{"endpoint with path", gcsblob.Config{Bucket: "b-1", HMACAccessID: "a", HMACSecret: "s", Endpoint: "https://x/y"}, signet.Invalid},
	} {
		_, err := gcsblob.Open(context.Background(), tc.cfg)
		wantCode(t, tc.what, err, tc.code)
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error quotes the key file", tc.what)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
