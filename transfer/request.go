package transfer

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/retry"
)

// Retry policy for requests to the store.
const (
	// maxRetries is how often one part, range or object request is retried
	// after a network error or a 5xx answer.
	maxRetries = 5
	// maxRetryAfter caps how long a store's Retry-After is honoured.
	maxRetryAfter = 30 * time.Second
	// expiryMargin: a URL this close to its expiry is renewed before use.
	expiryMargin = 10 * time.Second
	// apiAttempts bounds the attempts of an idempotent API call that the
	// server answered with Unavailable or RateLimited.
	apiAttempts = 3
)

// Backoff between retries: exponential from backoffBase, capped at
// backoffMax, with jitter. Variables so that tests can shorten them.
var (
	backoffBase = 200 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// target is one pre-signed request. url is a bearer secret: it must never
// reach an error, a log line or a metric.
type target struct {
	method  string
	url     string
	headers map[string]string
	expires time.Time // zero when unknown
}

// stale reports whether t expires within expiryMargin of now.
func (t *target) stale(now time.Time) bool {
	return !t.expires.IsZero() && t.expires.Sub(now) < expiryMargin
}

// signer mints a fresh URL for one request.
type signer func(ctx context.Context) (*target, error)

// objectTarget turns one presign answer into a target for method.
func (j *job) objectTarget(r *sighttp.ObjectResult, method string) (*target, error) {
	if r.Error != nil {
		return nil, &signet.Error{Op: j.op, Code: signet.Code(r.Error.Code), Msg: j.name() + ": " + r.Error.Message}
	}
	if r.URL == "" || r.Method != method {
		return nil, j.errorf(signet.Internal, nil, "server issued no %s URL for %s", method, j.name())
	}
	t := &target{method: r.Method, url: r.URL, headers: r.Headers}
	if r.ExpiresAt != nil {
		t.expires = *r.ExpiresAt
	}
	return t, nil
}

// presign asks the server for a URL for the job's object.
func (j *job) presign(ctx context.Context, req *sighttp.PresignRequest) (*target, error) {
	t, _, err := j.presignObject(ctx, req)
	return t, err
}

// presignObject is presign that also returns the server's whole answer
// for the object (such as its SHA-256 and ETag, when asked for).
func (j *job) presignObject(ctx context.Context, req *sighttp.PresignRequest) (*target, *sighttp.ObjectResult, error) {
	var resp *sighttp.PresignResponse
	err := j.api(ctx, func() (err error) {
		resp, err = j.c.Presign(ctx, j.team, req)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Objects) != 1 {
		return nil, nil, j.errorf(signet.Internal, nil, "server answered %d results for one object", len(resp.Objects))
	}
	method := http.MethodGet
	if req.Operation == "upload" {
		method = http.MethodPut
	}
	r := &resp.Objects[0]
	t, err := j.objectTarget(r, method)
	if err != nil {
		return nil, nil, err
	}
	return t, r, nil
}

// api runs an idempotent API call, retrying it when the server is briefly
// unavailable or rate limits. Errors are wrapped with the object's name
// and keep their *signet.Error.
func (j *job) api(ctx context.Context, call func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = call()
		c := signet.ErrorCode(err)
		if err == nil || attempt == apiAttempts || (c != signet.Unavailable && c != signet.RateLimited) || ctx.Err() != nil {
			break
		}
		if serr := retry.Sleep(ctx, backoff(attempt, 0)); serr != nil {
			return serr
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%s: %w", j.name(), err)
	}
	return nil
}

// newRequest builds the request for t with exactly the headers the server
// gave. body has size bytes (PUT only).
func (j *job) newRequest(ctx context.Context, t *target, body func() io.Reader, size int64) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = body()
	}
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, r)
	if err != nil {
		// err quotes the URL: do not wrap it.
		return nil, j.errorf(signet.Internal, nil, "server issued a malformed URL for %s", j.name())
	}
	for k, v := range t.headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		} else {
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
		}
	}
	return req, nil
}

// sanitize returns the cause of a failed request without the URL that
// net/http puts in a *url.Error: only the method and the cause remain. If
// the cause itself quotes the URL or its query, a generic message replaces
// it.
func sanitize(err error, t *target) error {
	ue, ok := err.(*url.Error)
	if !ok || ue.Err == nil {
		return &requestError{method: t.method, err: errRequestFailed}
	}
	cause := ue.Err
	msg := cause.Error()
	u, perr := url.Parse(t.url)
	if _, deeper := errors.AsType[*url.Error](cause); deeper || perr != nil || strings.Contains(msg, t.url) ||
		(u.RawQuery != "" && strings.Contains(msg, u.RawQuery)) {
		cause = errRequestFailed
	}
	return &requestError{method: t.method, err: cause}
}

var errRequestFailed = errors.New("request failed (details withheld: they quote the signed URL)")

// requestError is a failed request to a store, without its URL.
type requestError struct {
	method string
	err    error
}

func (e *requestError) Error() string { return e.method + ": " + e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// Status classes of a store's answer.
const (
	statusOK = iota
	statusRefused
	statusTransient
	statusFatal
)

func classify(code int) int {
	switch {
	case code >= 200 && code < 300:
		return statusOK
	case code == http.StatusForbidden:
		return statusRefused
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return statusTransient
	}
	return statusFatal
}

// storeError describes a store's refusal. It names the status, never the
// URL. When the store answers with a problem document carrying a signet
// code (the built-in local store does), that code is used.
func (j *job) storeError(what string, resp *http.Response) *signet.Error {
	code := signet.Internal
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		code = signet.PermissionDenied
	case s == http.StatusNotFound:
		code = signet.NotFound
	case s == http.StatusConflict, s == http.StatusPreconditionFailed:
		code = signet.Conflict
	case s == http.StatusRequestEntityTooLarge:
		code = signet.TooLarge
	case s == http.StatusTooManyRequests:
		code = signet.RateLimited
	case s >= 500:
		code = signet.Unavailable
	case s >= 400:
		code = signet.Invalid
	}
	msg := fmt.Sprintf("%s: store answered %s", what, status(resp))
	if ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) == "application/problem+json" {
		var p struct {
			Code string `json:"code"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil && validCode(p.Code) {
			msg += " (" + p.Code + ")"
			if signetCodes[signet.Code(p.Code)] {
				code = signet.Code(p.Code)
			}
		}
	}
	if ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) == "application/xml" {
		// S3-compatible stores name a checksum refusal in an XML error
		// document; only the code is read, and only known codes count.
		var e struct {
			Code string `xml:"Code"`
		}
		if xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && s3ChecksumCodes[e.Code] {
			code = signet.ChecksumMismatch
			msg += " (" + e.Code + ")"
		}
	}
	return j.errorf(code, nil, "%s", msg)
}

// s3ChecksumCodes are the S3 error codes for a body that does not match its
// declared checksum (AWS: BadDigest; MinIO: XAmzContentChecksumMismatch).
var s3ChecksumCodes = map[string]bool{
	"BadDigest": true, "XAmzContentChecksumMismatch": true, "InvalidDigest": true,
}

// status names resp's status by its code only: the reason phrase comes from
// the store and is not trusted into an error.
func status(resp *http.Response) string {
	return fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// signetCodes are the codes a store's problem document may pass on.
var signetCodes = map[signet.Code]bool{
	signet.Invalid: true, signet.InvalidKey: true, signet.InvalidPart: true,
	signet.PermissionDenied: true, signet.NotFound: true, signet.Conflict: true,
	signet.TooLarge: true, signet.ChecksumMismatch: true,
}

// validCode reports whether s looks like a problem code ([a-z_], short), so
// that nothing else from a store's body reaches an error.
func validCode(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '_' && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// discard drains (a bounded amount of) and closes a response body, so the
// connection can be reused.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
}

// retryAfter returns the delay a 429 or 503 answer asks for, if any.
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter)
}

// backoff returns the delay before retry number attempt (1-based):
// exponential with jitter in [d/2, d], or the server's wish when larger.
func backoff(attempt int, wish time.Duration) time.Duration {
	return max(retry.Backoff(backoffBase, backoffMax, attempt-1), wish)
}

// retrier carries one request's retry budget across its attempts.
type retrier struct {
	j         *job
	what      string // names the request in errors, e.g. "part 3 of t/k"
	failures  int    // transient failures since the last progress
	refreshed bool   // whether a 403 has already renewed the URL
}

// transient records a failure worth retrying and waits before the next
// attempt. It returns the error to give up with once retries are
// exhausted, or the context's cause.
func (r *retrier) transient(ctx context.Context, cause error, wish time.Duration) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	r.failures++
	if r.failures > maxRetries {
		code := signet.Unavailable
		if se, ok := errors.AsType[*signet.Error](cause); ok {
			code = se.Code
		}
		return r.j.errorf(code, cause, "%s: giving up after %d attempts", r.what, r.failures)
	}
	return retry.Sleep(ctx, backoff(r.failures, wish))
}

// refused handles a 403. The first one renews the URL (it may have
// expired); a second one is final.
func (r *retrier) refused(resp *http.Response) error {
	if r.refreshed {
		return r.j.errorf(signet.PermissionDenied, nil, "%s: store refused a freshly signed URL (%s)", r.what, status(resp))
	}
	r.refreshed = true
	return nil
}

// progressed resets the failure count after an attempt made progress.
func (r *retrier) progressed() { r.failures = 0 }

// urlSource holds a URL shared by several requests (the ranges of one
// download) and renews it once per generation.
type urlSource struct {
	sign signer
	mu   sync.Mutex
	t    *target
	gen  int
}

// get returns the current URL and its generation, renewing it first when
// it is about to expire.
func (s *urlSource) get(ctx context.Context) (*target, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t == nil || s.t.stale(time.Now()) {
		t, err := s.sign(ctx)
		if err != nil {
			return nil, 0, err
		}
		s.t = t
		s.gen++
	}
	return s.t, s.gen, nil
}

// renew replaces the URL of generation gen, unless another request has
// already replaced it.
func (s *urlSource) renew(ctx context.Context, gen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return nil
	}
	t, err := s.sign(ctx)
	if err != nil {
		return err
	}
	s.t = t
	s.gen++
	return nil
}
