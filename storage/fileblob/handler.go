package fileblob

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
)

// Problem codes of /blob answers. They are stable: clients and tests
// compare them.
const (
	codeSignatureInvalid    = "signature_invalid"     // 403: malformed, unknown or tampered URL
	codeExpired             = "expired"               // 403
	codeMethodNotAllowed    = "method_not_allowed"    // 403: the URL was signed for another method
	codeIPNotAllowed        = "ip_not_allowed"        // 403: client outside the signed network
	codeContentTypeMismatch = "content_type_mismatch" // 403: Content-Type differs from the signed one
	codeInvalidContentType  = "invalid_content_type"  // 400: unbound Content-Type is not a media type
	codeSizeMismatch        = "size_mismatch"         // 400: body shorter than the signed size
	codeTooLarge            = "too_large"             // 413: body larger than the signed or maximum size
	codeChecksumMismatch    = "checksum_mismatch"     // 400: body does not match the signed SHA-256
	codeInvalidKey          = "invalid_key"           // 400: the path holds no valid key
	codeInvalidPart         = "invalid_part"          // 400: part number beyond the upload's plan
	codeNotFound            = "not_found"             // 404: no such object, bucket or upload
	codeConflict            = "conflict"              // 409: key collides with a folder or an object
	codeUnsupportedMethod   = "unsupported_method"    // 405: not GET, HEAD or PUT
	codeIncompleteBody      = "incomplete_body"       // 400: the client stopped sending
	codeInternal            = "internal"              // 500
)

// problem is an error answer. detail is safe to show and never holds the
// URL or its signature; err is the internal cause, only logged.
type problem struct {
	status int
	code   string
	detail string
	err    error
}

func newProblem(status int, code, detail string) *problem {
	return &problem{status: status, code: code, detail: detail}
}

// fsProblem answers a file system error met while handling a key.
func fsProblem(err error) *problem {
	switch fsCode(err) {
	case signet.NotFound:
		return newProblem(http.StatusNotFound, codeNotFound, "no such object")
	case signet.Conflict:
		return newProblem(http.StatusConflict, codeConflict, "the key collides with an existing object or folder")
	case signet.InvalidKey:
		return newProblem(http.StatusBadRequest, codeInvalidKey, "a segment of the key is too long for the local store")
	}
	return &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: err}
}

// access collects what the access log records of a request.
type access struct {
	requestID          string
	bucket, key, grant string
	// operation names the request for Options.OnServe.
	operation string
	bytesIn   int64
	err       error
}

// requestIDHeader names a request in its answer. The API server sets it
// before the store's handler runs (http.Server.observe); a store served
// on its own sets one itself.
const requestIDHeader = "X-Request-Id"

// requestID returns the id the answer on w carries, setting a new one
// when it has none.
func requestID(w http.ResponseWriter) string {
	h := w.Header()
	id := h.Get(requestIDHeader)
	if id == "" {
		id = signet.NewID(10)
		h.Set(requestIDHeader, id)
	}
	return id
}

// ServeHTTP serves signed URLs at /blob/{bucket}/{key...}: mount the Store
// on "/blob/" of a mux (the request path must keep its /blob/ prefix).
// Refusals are application/problem+json documents with the stable codes
// listed in the package documentation. Each request is logged once at Info level with its
// method, bucket, key, grant id, status, byte counts and client address,
// never with its query; and reported to Options.OnServe when its URL's
// signature checked out and carries a grant id.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	a := &access{requestID: requestID(w)}
	ip := s.clientIP(r)
	if p := s.serve(sw, r, a, ip); p != nil {
		a.err = p.err
		writeProblem(sw, p, a.requestID)
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("bucket", a.bucket),
		slog.String("key", a.key),
		slog.String("grant", a.grant),
		slog.Int("status", sw.status),
		slog.Int64("bytes_in", a.bytesIn),
		slog.Int64("bytes_out", sw.bytes),
		slog.String("client_ip", ip.String()),
	}
	level := slog.LevelInfo
	if a.err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("err", a.err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "blob", attrs...)
	if s.onServe != nil && a.grant != "" {
		s.onServe(a.usage(r.Method, sw, ip, s.now()))
	}
}

// usage reports a request answered on w at time now.
func (a *access) usage(method string, w *statusWriter, ip netip.Addr, now time.Time) *signet.UsageEvent {
	e := &signet.UsageEvent{
		Time: now, Source: signet.UsageSourceLocal, RequestID: a.requestID, GrantID: a.grant,
		Bucket: a.bucket, ObjectKey: a.key, Method: method, Operation: a.operation,
		Status: w.status, BytesSent: w.bytes, BytesReceived: a.bytesIn,
	}
	if e.Status == 0 { // net/http answers 200 for a handler that wrote nothing
		e.Status = http.StatusOK
	}
	if ip.IsValid() {
		e.RemoteAddr = ip.String()
	}
	return e
}

// operation names a request as MinIO's audit log does.
func operation(method string, part bool) string {
	switch {
	case method == http.MethodGet:
		return "GetObject"
	case method == http.MethodHead:
		return "HeadObject"
	case part:
		return "PutObjectPart"
	}
	return "PutObject"
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request, a *access, ip netip.Addr) *problem {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		return newProblem(http.StatusMethodNotAllowed, codeUnsupportedMethod, "only GET, HEAD and PUT are served")
	}
	c, p := s.authorize(r.Method, r.URL.Path, r.URL.RawQuery, ip, a)
	if p != nil {
		return p
	}
	if p := s.checkRevoked(r.Context(), c); p != nil {
		return p
	}
	switch {
	case r.Method != http.MethodPut:
		return s.get(w, r, c)
	case c.UploadID != "":
		return s.putPart(w, r, c, a)
	}
	return s.putObject(w, r, c, a)
}

// authorize checks the URL of a request with method from client ip: its
// path names a valid bucket and key, its query is well formed and signed by
// a known key, it has not expired, it was signed for method and, when it is
// bound to a network, ip is inside it. It touches no file. It fills a's
// bucket, key, and grant and operation, as they become trustworthy.
func (s *Store) authorize(method, urlPath, rawQuery string, ip netip.Addr, a *access) (*claims, *problem) {
	rest, ok := strings.CutPrefix(urlPath, "/blob/")
	bucket, key, _ := strings.Cut(rest, "/")
	if !ok || !validBucket(bucket) {
		return nil, newProblem(http.StatusNotFound, codeNotFound, "no such bucket")
	}
	a.bucket = bucket
	if err := storage.ValidateKey(key); err != nil {
		return nil, newProblem(http.StatusBadRequest, codeInvalidKey, signet.ErrorMessage(err))
	}
	a.key = key

	c, sig, reason := parseQuery(rawQuery)
	if c == nil {
		return nil, newProblem(http.StatusForbidden, codeSignatureInvalid, "invalid signed URL: "+reason)
	}
	c.Bucket, c.Key = bucket, key
	if !s.verify(c, sig) {
		return nil, newProblem(http.StatusForbidden, codeSignatureInvalid, "the URL's signature does not match")
	}
	a.grant, a.operation = c.GrantID, operation(method, c.UploadID != "")
	switch {
	case s.now().Unix() >= c.Expires:
		return nil, newProblem(http.StatusForbidden, codeExpired, "the URL has expired")
	case method != c.Method:
		return nil, newProblem(http.StatusForbidden, codeMethodNotAllowed, "the URL was signed for "+c.Method)
	case c.ClientPrefix.IsValid() && !prefixContains(c.ClientPrefix, ip):
		return nil, newProblem(http.StatusForbidden, codeIPNotAllowed, "the URL may not be used from this network")
	}
	return c, nil
}

// get serves an object for GET or HEAD, with Range and conditional request
// support from http.ServeContent.
func (s *Store) get(w http.ResponseWriter, r *http.Request, c *claims) *problem {
	f, info, err := s.openObject(c.Bucket, c.Key)
	if err != nil {
		return fsProblem(err)
	}
	defer f.Close()
	h := w.Header()
	ct := info.ContentType
	if ct == "" {
		ct = octetStream
	}
	h.Set("Content-Type", ct)
	if info.SHA256 != nil {
		h.Set("ETag", etag(info.SHA256))
	}
	// Objects are served from the API's origin: never let a browser run
	// them as active content there.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private")
	http.ServeContent(w, r, "", info.ModTime, f)
	return nil
}

// checkContentType returns the content type to store for a PUT.
func checkContentType(r *http.Request, c *claims) (string, *problem) {
	got := r.Header.Get("Content-Type")
	if c.HasContentType {
		if got != c.ContentType || len(r.Header.Values("Content-Type")) != 1 {
			return "", newProblem(http.StatusForbidden, codeContentTypeMismatch, "Content-Type must be exactly the one the URL was signed for")
		}
		return got, nil
	}
	if got == "" {
		return "", nil
	}
	if storage.ValidateContentType(got) != nil {
		return "", newProblem(http.StatusBadRequest, codeInvalidContentType, "Content-Type is not a valid media type")
	}
	return got, nil
}

// receive streams the request body into a new temporary file, a part file
// when part is true. The body must be exactly size bytes when size >= 0, at most max
// bytes otherwise, and match want when want is not nil. On a problem
// nothing is left behind.
func (s *Store) receive(r *http.Request, a *access, part bool, size, max int64, want []byte) (*tmpFile, []byte, *problem) {
	tooLarge := newProblem(http.StatusRequestEntityTooLarge, codeTooLarge, "the body is larger than the URL allows")
	short := newProblem(http.StatusBadRequest, codeSizeMismatch, "the body is shorter than the size the URL was signed for")
	limit := max
	if size >= 0 {
		limit = size
	}
	if cl := r.ContentLength; cl >= 0 {
		switch {
		case cl > limit:
			return nil, nil, tooLarge
		case size >= 0 && cl < size:
			return nil, nil, short
		}
	}
	t, err := s.createTmp(part)
	if err != nil {
		return nil, nil, &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: err}
	}
	n, readErr, writeErr := copyContent(t, r.Body, limit+1)
	a.bytesIn = n
	var p *problem
	switch {
	case writeErr != nil:
		p = &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: writeErr}
	case n > limit:
		p = tooLarge
	case readErr != nil:
		p = newProblem(http.StatusBadRequest, codeIncompleteBody, "the body could not be read completely")
	case size >= 0 && n < size:
		p = short
	}
	if p != nil {
		t.discard()
		return nil, nil, p
	}
	sum, err := t.finish()
	if err != nil {
		t.discard()
		return nil, nil, &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: err}
	}
	if want != nil && !bytes.Equal(sum, want) {
		t.discard()
		return nil, nil, newProblem(http.StatusBadRequest, codeChecksumMismatch, "the body does not match the SHA-256 the URL was signed for")
	}
	return t, sum, nil
}

// putObject stores an object atomically: the body is written to a
// temporary file, made durable, then renamed over the object, and its
// metadata written.
func (s *Store) putObject(w http.ResponseWriter, r *http.Request, c *claims, a *access) *problem {
	ct, p := checkContentType(r, c)
	if p != nil {
		return p
	}
	t, sum, p := s.receive(r, a, false, c.Size, s.maxSize, c.SHA256)
	if p != nil {
		return p
	}
	if err := s.commitObject(t, c.Bucket, c.Key, ct, sum); err != nil {
		return fsProblem(err)
	}
	w.Header().Set("ETag", etag(sum))
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeProblem answers p as RFC 9457 problem+json, with the request's id
// as the API's problems carry it (http.Problem.RequestID).
func writeProblem(w http.ResponseWriter, p *problem, requestID string) {
	h := w.Header()
	for _, k := range []string{"ETag", "Last-Modified", "Content-Range", "Accept-Ranges", "Content-Security-Policy", "Content-Encoding"} {
		h.Del(k)
	}
	body, _ := json.Marshal(map[string]any{
		"type":       "about:blank",
		"title":      http.StatusText(p.status),
		"status":     p.status,
		"code":       p.code,
		"detail":     p.detail,
		"request_id": requestID,
	})
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.status)
	w.Write(body)
}

// statusWriter records the status and the number of body bytes written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
