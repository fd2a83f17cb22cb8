package gcsblob_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/testpeer"
)

// signatureGate is a reverse proxy on 127.0.0.1 in front of
// fake-gcs-server that does what GCS does with a V4 query-string signed
// request and fake-gcs-server does not (it accepts any signature, expired
// or none): before a request reaches the store, it checks
//
//   - that the request is signed at all (every X-Goog-* parameter of a V4
//     signed URL present), by the one key the gate knows (the
//     credential's id is the service account or HMAC access id), with
//     host among the signed headers; else 403 AccessDenied;
//   - the expiry: X-Goog-Date plus X-Goog-Expires against the gate's
//     clock; an expired URL is refused with 400 ExpiredToken, as GCS
//     answers (a malformed date or lifetime with 400
//     MalformedSecurityHeader);
//   - the signature, with the verifier of verify_test.go: it rebuilds the
//     canonical request from the request as it arrives (method, escaped
//     path, query without the signature, and the values the client sent
//     for every signed header: content-type, content-length, any
//     x-goog-* the driver signs) and verifies the RSA signature with the
//     public key, or recomputes the HMAC one; a mismatch, including a
//     bound header sent with another value or not at all, is refused with
//     403 SignatureDoesNotMatch.
//
// Refusals carry GCS's XML error document. Everything else goes to
// fake-gcs-server unchanged but for the Host header, which the fake routes
// on. The gate stands in for GCS's authentication only; the fake does the
// addressing and stores the bytes.
type signatureGate struct {
	*httptest.Server
	v  *verifier
	id string // the credential id the gate accepts

	passed, refused, expired atomic.Int64
}

func newSignatureGate(t *testing.T, p *testpeer.FakeGCSPeer, v *verifier, id string) *signatureGate {
	t.Helper()
	target, err := url.Parse(p.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &signatureGate{v: v, id: id}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target) // also the Host: fake-gcs-server routes on its public host
	}}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, code, details := g.check(r); status != 0 {
			if status == http.StatusBadRequest && code == "ExpiredToken" {
				g.expired.Add(1)
			} else {
				g.refused.Add(1)
			}
			gcsError(w, status, code, details)
			return
		}
		g.passed.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// check returns 0 for a request GCS would let through, else the status,
// XML error code and details GCS would answer.
func (g *signatureGate) check(r *http.Request) (int, string, string) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return http.StatusBadRequest, "InvalidArgument", "the query does not parse"
	}
	for _, name := range []string{"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature"} {
		if len(q[name]) != 1 || q.Get(name) == "" {
			return http.StatusForbidden, "AccessDenied", "Anonymous caller does not have access: " + name + " is missing or repeated"
		}
	}
	if id, _, _ := strings.Cut(q.Get("X-Goog-Credential"), "/"); id != g.id {
		return http.StatusForbidden, "AccessDenied", "the credential names a key this store does not know"
	}
	if !slices.Contains(strings.Split(q.Get("X-Goog-SignedHeaders"), ";"), "host") {
		return http.StatusForbidden, "SignatureDoesNotMatch", "host is not a signed header"
	}
	date, err := time.Parse("20060102T150405Z", q.Get("X-Goog-Date"))
	if err != nil {
		return http.StatusBadRequest, "MalformedSecurityHeader", "X-Goog-Date is not a basic ISO 8601 UTC time"
	}
	secs, err := strconv.ParseInt(q.Get("X-Goog-Expires"), 10, 64)
	if err != nil || secs < 1 || secs > 604800 {
		return http.StatusBadRequest, "MalformedSecurityHeader", "X-Goog-Expires must be 1 to 604800 seconds"
	}
	// One reading of the clock for both checks, so that a request at the
	// boundary is not judged expired by one and valid by the other.
	now := g.v.now()
	if end := date.Add(time.Duration(secs) * time.Second); now.After(end) {
		return http.StatusBadRequest, "ExpiredToken", fmt.Sprintf("Request has expired: %d", end.Unix())
	}
	v := *g.v
	v.now = func() time.Time { return now }
	if err := v.verify(r); err != nil {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return 0, "", ""
}

// gcsError writes the XML API's error document.
func gcsError(w http.ResponseWriter, status int, code, details string) {
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message><Details>%s</Details></Error>",
		code, http.StatusText(status), details)
}
