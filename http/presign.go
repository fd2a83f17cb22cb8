package http

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Limits of one presign request.
const (
	// MaxBatch is the most objects one presign request may name.
	MaxBatch = 10000
	// MaxSinglePut is the largest object a single upload URL may carry;
	// larger objects go through chunked uploads (S3's single PUT limit).
	MaxSinglePut = 5 << 30
)

// PresignRequest asks for URLs for one operation on a batch of objects.
type PresignRequest struct {
	Operation string          `json:"operation"` // "download" or "upload"
	Objects   []ObjectRequest `json:"objects"`
	// ExpiresIn is the requested lifetime in whole seconds; absent means
	// the team's cap for the operation.
	ExpiresIn *int64 `json:"expires_in,omitempty"`
	// WithSHA256, for downloads, asks signet to look each object up in
	// the store and answer its size, ETag and, when the store knows it,
	// SHA-256 with its URL (a missing object is then NotFound).
	WithSHA256 bool `json:"with_sha256,omitempty"`
}

// ObjectRequest names one object, relative to the team's space. Size,
// ContentType and SHA256 (hex) are bound into upload URLs.
type ObjectRequest struct {
	Key         string `json:"key"`
	Size        *int64 `json:"size,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
}

// ObjectError is a per-object failure in a batch.
type ObjectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ObjectResult is the answer for one object: a URL or an error. Headers
// is never nil for an issued URL, so the answer always states them ({}
// when there are none), and nil for an error, which leaves them out.
type ObjectResult struct {
	Key       string            `json:"key"`
	Method    string            `json:"method,omitempty"`
	URL       string            `json:"url,omitempty"`
	Headers   map[string]string `json:"headers,omitzero"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	Error     *ObjectError      `json:"error,omitempty"`
	// Size, ETag and SHA256 (hex) describe the object as the store holds
	// it, for downloads asked WithSHA256: the URL's bytes should match
	// SHA256 while the object's ETag is ETag. SHA256 is absent when the
	// store does not know it.
	Size   *int64 `json:"size,omitempty"`
	ETag   string `json:"etag,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// PresignResponse holds one result per requested object, in request order.
type PresignResponse struct {
	Objects []ObjectResult `json:"objects"`
}

// operation maps a presign operation to its permission and method.
func operation(op string) (signet.Permission, string, string, error) {
	switch op {
	case "download":
		return signet.PermRead, http.MethodGet, signet.ActionPresignDownload, nil
	case "upload":
		return signet.PermWrite, http.MethodPut, signet.ActionPresignUpload, nil
	}
	return 0, "", signet.ActionPresignDownload, signet.Errorf(signet.Invalid, `operation must be "download" or "upload"`)
}

// bodyOperation reads the operation of a presign body that did not decode,
// for its audit record, as leniently as can be: with invalid UTF-8
// replaced, unknown members and values of other types skipped, and up to
// the first syntax error. Like encoding/json it matches the member's name
// without regard to case and keeps the last one. It returns "" when body
// names no operation before it breaks off.
func bodyOperation(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	op := ""
	for {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok { // the end of the object, or of what can be read
			return op
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return op
		}
		var s *string
		if strings.EqualFold(name, "operation") && json.Unmarshal(v, &s) == nil && s != nil {
			op = *s
		}
	}
}

// access is what a data-plane request may use once authorised: the team,
// its connector and bucket, and the allowed network the client is in.
type access struct {
	team   *signet.Team
	conn   *signet.Connector
	bucket *storage.Bucket
	// network is the team's allowed network that holds the client; URLs
	// are bound to it where the store can enforce that (local store,
	// Azure's sip). Zero when the team allows every network.
	network netip.Prefix
	// unbound is set once the store refused a network binding as
	// unimplemented; its URLs then rely on issuance checks and the
	// bucket policy (signet policy render).
	unbound bool
}

// teamBucket authorises the caller of r for p in team, checks the client's
// network against the team's allow-list, and opens the team's bucket.
func (s *Server) teamBucket(r *http.Request, team string, p signet.Permission) (*access, error) {
	te, err := s.teamAccess(r.Context(), genOf(r), actorOf(r), team, p)
	if err != nil {
		return nil, err
	}
	acc := access{team: te.team, conn: te.conn}
	ip := s.clientIP(r)
	network, ok := acc.team.AllowsFrom(ip)
	if !ok {
		return nil, signet.Errorf(signet.PermissionDenied, "client address %s is outside team %q's allowed networks", ip, team)
	}
	acc.network = network
	if te.secretErr != nil {
		return nil, te.secretErr
	}
	be, err := s.backends(r.Context(), acc.conn, te.secret)
	if err != nil {
		return nil, err
	}
	acc.bucket = storage.Open(be, acc.conn)
	return &acc, nil
}

// sign signs one URL, bound to the client's allowed network when the
// team has one and the store can enforce it.
func (a *access) sign(ctx context.Context, key string, opts *driver.SignOptions) (*driver.SignedURL, error) {
	if a.network.IsValid() && !a.unbound {
		opts.ClientPrefix = a.network
		u, err := a.bucket.SignedURL(ctx, key, opts)
		if signet.ErrorCode(err) != signet.Unimplemented {
			return u, err
		}
		a.unbound = true
		opts.ClientPrefix = netip.Prefix{}
	}
	return a.bucket.SignedURL(ctx, key, opts)
}

// connector loads the team's connector and its stored credential, if any.
func connector(tx signet.Tx, team string) (*signet.Connector, *signet.Credential, error) {
	c, err := tx.Connector(team)
	if signet.ErrorCode(err) == signet.NotFound {
		return nil, nil, signet.Errorf(signet.NotFound, "team %q has no storage connector", team)
	}
	if err == nil {
		c, err = withTeamNetworks(tx, c)
	}
	if err != nil || c.CredentialsRef == "" {
		return c, nil, err
	}
	cred, err := tx.Credential(c.CredentialsRef)
	if err == nil && cred.Team != team {
		return nil, nil, signet.E("connector", signet.Internal, "", fmt.Errorf("connector of team %q references a credential of team %q", team, cred.Team))
	}
	return c, cred, err
}

// openBackend opens the driver for c, signing with its unsealed credential.
func (s *Server) openBackend(ctx context.Context, c *signet.Connector, cred *signet.Credential) (driver.Backend, error) {
	secret, err := s.openSecret(cred)
	if err != nil {
		return nil, err
	}
	return s.backends(ctx, c, secret)
}

// openBucket opens the bucket of c, signing with its unsealed credential.
func (s *Server) openBucket(ctx context.Context, c *signet.Connector, cred *signet.Credential) (*storage.Bucket, error) {
	be, err := s.openBackend(ctx, c, cred)
	if err != nil {
		return nil, err
	}
	return storage.Open(be, c), nil
}

func (s *Server) handlePresign(w http.ResponseWriter, r *http.Request) {
	team := r.PathValue("team")
	var req PresignRequest
	if body, err := decodeBody(w, r, &req); err != nil {
		_, _, action, _ := operation(bodyOperation(body))
		ev := s.event(r, action)
		ev.Team = team
		if key, ok := refusedKey(err); ok {
			ev.ObjectKey = auditKey(key)
		}
		s.deny(w, r, ev, err)
		return
	}
	perm, method, action, err := operation(req.Operation)
	ev := s.event(r, action)
	ev.Team = team
	if err == nil && len(req.Objects) == 0 {
		err = signet.Errorf(signet.Invalid, "objects must name at least one object")
	}
	if err == nil && req.WithSHA256 && method != http.MethodGet {
		err = signet.Errorf(signet.Invalid, "with_sha256 applies to downloads only")
	}
	if err == nil && len(req.Objects) > MaxBatch {
		err = signet.Errorf(signet.TooLarge, "at most %d objects per request", MaxBatch)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	acc, err := s.teamBucket(r, team, perm)
	if err == nil {
		ev.Store, ev.Bucket = acc.conn.Backend, acc.conn.Bucket
	}
	now := s.now()
	var expires time.Time
	if err == nil {
		expires, err = resolveExpiry(now, req.ExpiresIn, acc.team.ExpiryCap(method == http.MethodPut))
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}

	var stats []statResult
	if req.WithSHA256 {
		stats = statObjects(r.Context(), acc.bucket, req.Objects)
	}
	results := make([]ObjectResult, len(req.Objects))
	events := make([]*signet.AuditEvent, len(req.Objects))
	failed := 0
	for i, o := range req.Objects {
		oev := *ev
		oev.ObjectKey = auditKey(acc.bucket.StoreKey(o.Key))
		oev.Method = method
		results[i].Key = o.Key
		opts, err := signOptions(method, o)
		var u *driver.SignedURL
		if err == nil {
			opts.Now, opts.Expires = now, expires
			opts.GrantID = grantID(now)
			u, err = acc.sign(r.Context(), o.Key, opts)
		}
		if err == nil && stats != nil {
			err = applyStat(&results[i], stats[i])
		}
		if err != nil {
			if c := signet.ErrorCode(err); c == signet.Internal || c == signet.Unavailable {
				s.logger.ErrorContext(r.Context(), "signing", "request_id", requestID(r), "err", err)
			}
			markFailed(&oev, err)
			if oev.Code == signet.InvalidKey {
				// A refused key names no object under the prefix:
				// record it exactly as the client sent it.
				oev.ObjectKey = auditKey(o.Key)
			}
			results[i] = ObjectResult{Key: o.Key}
			results[i].Error = &ObjectError{Code: string(signet.ErrorCode(err)), Message: signet.ErrorMessage(err)}
			failed++
		} else {
			// A driver may lower the expiry (its signing credentials end
			// sooner); the answer and the record state the real one.
			exp := realExpiry(u, expires)
			oev.GrantID, oev.ExpiresAt = opts.GrantID, exp
			results[i].Method, results[i].URL, results[i].Headers = u.Method, u.URL, headersOf(u)
			results[i].ExpiresAt = &exp
		}
		events[i] = &oev
	}
	if err := s.commit(r.Context(), nil, events...); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	if failed == len(results) {
		// Nothing was issued: the request fails as a whole, with the first
		// object's error and every object's in the problem document.
		first := results[0].Error
		s.writeProblem(w, r, &signet.Error{Code: signet.Code(first.Code), Msg: first.Message}, results)
		return
	}
	s.metrics.urls.WithLabelValues(acc.conn.Backend, method).Add(float64(len(results) - failed))
	writePresign(w, &PresignResponse{Objects: results})
}

// grantIDTime is the alphabet of a grant id's time prefix: base32 in
// ASCII order, so that ids sort by the time they were issued.
const grantIDTime = "0123456789abcdefghijklmnopqrstuv"

// grantID returns a new grant id: the issue time in milliseconds since the
// epoch, 9 characters that sort in time order (45 bits, enough until the
// year 3084), then 16 random base32 characters (80 bits, as much as an id
// carried before). The time prefix makes each new id land at the end of
// the audit log's index on grant ids instead of on a random page of it:
// the random ids took a page write for nearly every audited presign in the
// single writer's commit. The URL states its issue time anyway (its
// signature date); the random part keeps ids unguessable and unique.
func grantID(now time.Time) string {
	var b [25]byte
	ms := uint64(now.UnixMilli())
	for i := 8; i >= 0; i-- {
		b[i] = grantIDTime[ms&31]
		ms >>= 5
	}
	copy(b[9:], signet.NewID(10))
	return string(b[:])
}

// headersOf returns the headers a client must send with u, {} when none.
func headersOf(u *driver.SignedURL) map[string]string {
	if u.Headers == nil {
		return map[string]string{}
	}
	return u.Headers
}

// realExpiry is when u stops working: the driver's statement, which is
// never later than what was asked.
func realExpiry(u *driver.SignedURL, asked time.Time) time.Time {
	if !u.Expires.IsZero() && u.Expires.Before(asked) {
		return u.Expires
	}
	return asked
}

// resolveExpiry applies signet.ResolveExpiry to an optional request field;
// an explicit 0 is refused like any other lifetime below one second.
func resolveExpiry(now time.Time, requested *int64, limit time.Duration) (time.Time, error) {
	if requested == nil {
		return signet.ResolveExpiry(now, 0, limit)
	}
	if *requested < 1 {
		return time.Time{}, signet.Errorf(signet.InvalidExpiry, "expires_in must be at least 1 second")
	}
	return signet.ResolveExpiry(now, *requested, limit)
}

// signOptions checks one object's upload bindings.
func signOptions(method string, o ObjectRequest) (*driver.SignOptions, error) {
	opts := &driver.SignOptions{Method: method, Size: -1}
	if method != http.MethodPut {
		if o.Size != nil || o.ContentType != "" || o.SHA256 != "" {
			return nil, signet.Errorf(signet.Invalid, "size, content_type and sha256 apply to uploads only")
		}
		return opts, nil
	}
	if o.Size != nil {
		if *o.Size < 0 {
			return nil, signet.Errorf(signet.Invalid, "size must not be negative")
		}
		if *o.Size > MaxSinglePut {
			return nil, signet.Errorf(signet.TooLarge, "size exceeds %d bytes; use a chunked upload", int64(MaxSinglePut))
		}
		opts.Size = *o.Size
	}
	opts.ContentType = o.ContentType
	if o.SHA256 != "" {
		sum, err := parseSHA256(o.SHA256)
		if err != nil {
			return nil, err
		}
		opts.SHA256 = sum
	}
	return opts, nil
}

func parseSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, signet.Errorf(signet.Invalid, "sha256 must be 64 hexadecimal characters")
	}
	return b, nil
}
