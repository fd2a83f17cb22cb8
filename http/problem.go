package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/signetdev/signet"
)

// methodNotAllowed is the code of a request whose path the API serves,
// but not with its method. Only routing gives it, so it is this package's.
const methodNotAllowed signet.Code = "method_not_allowed"

// statusOf is the only table from error codes to HTTP statuses.
func statusOf(code signet.Code) int {
	switch code {
	case signet.Invalid, signet.InvalidKey, signet.InvalidExpiry, signet.InvalidPart, signet.ChecksumMismatch:
		return http.StatusBadRequest
	case signet.Unauthenticated:
		return http.StatusUnauthorized
	case signet.PermissionDenied:
		return http.StatusForbidden
	case signet.NotFound:
		return http.StatusNotFound
	case methodNotAllowed:
		return http.StatusMethodNotAllowed
	case signet.Conflict:
		return http.StatusConflict
	case signet.TooLarge:
		return http.StatusRequestEntityTooLarge
	case signet.RateLimited:
		return http.StatusTooManyRequests
	case signet.Unimplemented:
		return http.StatusNotImplemented
	case signet.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem document with signet's stable code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors lists per-object failures of a batch request that failed as a
	// whole.
	Errors []ObjectResult `json:"errors,omitempty"`
}

// Error makes a Problem usable as an error on the client side.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// retryAfter is the Retry-After value sent with 503 and 429 answers.
const retryAfter = "2"

// writeError answers with err as problem+json. Internal causes are logged,
// never sent. A refusal for lack of permission is recorded first
// (recordRefusal): handlers that record their own refusals answer them
// through deny, never through here.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if signet.ErrorCode(err) == signet.PermissionDenied {
		s.recordRefusal(r, err)
	}
	s.writeProblem(w, r, err, nil)
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error, objs []ObjectResult) {
	code := signet.ErrorCode(err)
	status := statusOf(code)
	if code == signet.Internal || code == signet.Unavailable {
		s.logger.ErrorContext(r.Context(), "request failed", "request_id", requestID(r), "code", code, "err", err)
	}
	p := &Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Code:      string(code),
		Detail:    signet.ErrorMessage(err),
		RequestID: requestID(r),
		Errors:    objs,
	}
	h := w.Header()
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="signet"`)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		h.Set("Retry-After", retryAfter)
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONHeader(w, status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONHeader sends the headers of a JSON answer with status.
func writeJSONHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}

// maxBody bounds every JSON request body; a 10,000-object presign batch
// fits comfortably.
const maxBody = 8 << 20

// decode reads exactly one JSON value into v, refusing unknown fields,
// trailing data and bodies over maxBody.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	_, err := decodeBody(w, r, v)
	return err
}

// decodeBody is decode that also returns the bytes of the body it read,
// only the first ones when reading failed, for a caller that reads more
// from a refused body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return body, signet.Errorf(signet.TooLarge, "request body exceeds %d bytes", maxBody)
		}
		return body, signet.E("decode", signet.Invalid, "reading request body", err)
	}
	// encoding/json would silently replace invalid UTF-8 with U+FFFD,
	// rewriting keys; refuse such bodies instead, as a whole. When the
	// first invalid string is an object key, the refusal is the key rule's.
	if !utf8.Valid(body) {
		if _, ok := v.(keyedRequest); ok {
			if key, ok := invalidUTF8Key(body); ok {
				return body, &keyError{key: key, err: signet.Errorf(signet.InvalidKey, "invalid key: must be valid UTF-8")}
			}
		}
		return body, signet.Errorf(signet.Invalid, "request body is not valid UTF-8")
	}
	// A \u escape of a lone UTF-16 surrogate is replaced as well.
	if loneSurrogate(body) {
		return body, signet.Errorf(signet.Invalid, `request body escapes a lone UTF-16 surrogate (\uD800 to \uDFFF without its pair), which no UTF-8 string holds`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return body, signet.Errorf(signet.Invalid, "request body is empty")
		}
		return body, signet.E("decode", signet.Invalid, "malformed JSON body: "+jsonProblem(err), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return body, signet.Errorf(signet.Invalid, "malformed JSON body: trailing data after the JSON value")
	}
	return body, nil
}

// loneSurrogate reports whether body, valid UTF-8, escapes a UTF-16
// surrogate that is not half of a pair, which encoding/json decodes to
// U+FFFD. Escapes occur only in strings, where a backslash always starts
// one, so a scan from one backslash to the next suffices; bodies without
// "\\u" cost one search.
func loneSurrogate(body []byte) bool {
	for i := bytes.IndexByte(body, '\\'); i >= 0 && i+1 < len(body); {
		n := 2 // the escape's length
		if body[i+1] == 'u' {
			r, m := unquoteU(body[i+2:])
			if r == utf8.RuneError && m == 4 && !isFFFD(body[i+2:]) {
				return true
			}
			n += m
		}
		j := bytes.IndexByte(body[i+n:], '\\')
		if j < 0 {
			return false
		}
		i += n + j
	}
	return false
}

// isFFFD reports whether the hex digits at the start of q name U+FFFD
// itself, which is no surrogate.
func isFFFD(q []byte) bool { return len(q) >= 4 && bytes.EqualFold(q[:4], []byte("fffd")) }

// jsonProblem describes a decoding error without echoing input values.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + strconv.Quote(te.Field) + " must be " + te.Type.String()
		}
		return "value must be " + te.Type.String()
	case errors.As(err, &se):
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	}
	return err.Error()
}

// keyedRequest is a request body that names objects by "key" members: a
// key that is not valid UTF-8 is then refused as an invalid key, not as a
// malformed body.
type keyedRequest interface{ objectKeys() }

func (*PresignRequest) objectKeys()      {}
func (*CreateUploadRequest) objectKeys() {}

// keyError is an object key refused while decoding the body, with the key
// byte for byte as the client sent it, for the audit record.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// refusedKey returns the key that err refused while decoding, if any.
func refusedKey(err error) (string, bool) {
	var ke *keyError
	if errors.As(err, &ke) {
		return ke.key, true
	}
	return "", false
}

// invalidUTF8Key finds the first JSON string in body that is not valid
// UTF-8 and, when it is the value of a "key" member, returns it unquoted
// with its bytes kept.
func invalidUTF8Key(body []byte) (string, bool) {
	type frame struct {
		object bool
		atName bool // the next string is a member name
		member string
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	start := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		end := dec.InputOffset()
		raw := body[start:end]
		start = end
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		if top != nil && top.object && top.atName {
			top.member, _ = tok.(string)
			top.atName = false
			if !utf8.Valid(raw) {
				return "", false
			}
			continue
		}
		if _, ok := tok.(string); ok && !utf8.Valid(raw) {
			if top == nil || !top.object || top.member != "key" {
				return "", false
			}
			return unquoteRaw(raw[bytes.IndexByte(raw, '"'):]), true
		}
		if top != nil && top.object {
			top.atName = true
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', atName: d == '{'})
		}
	}
}

// unquoteRaw unquotes the JSON string q as encoding/json does, except that
// bytes that are not valid UTF-8 are kept instead of replaced.
func unquoteRaw(q []byte) string {
	q = q[1 : len(q)-1]
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		if q[i] != '\\' || i+1 == len(q) {
			b = append(b, q[i])
			continue
		}
		i++
		switch c := q[i]; c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, n := unquoteU(q[i+1:])
			b = utf8.AppendRune(b, r)
			i += n
		default: // '"', '\\', '/'
			b = append(b, c)
		}
	}
	return string(b)
}

// unquoteU decodes the hex digits after a "\u" in q, and a second "\uXXXX"
// when they form a surrogate pair; it returns the rune (U+FFFD for a lone
// surrogate) and how many bytes it read.
func unquoteU(q []byte) (rune, int) {
	hex4 := func(q []byte) rune {
		if len(q) < 4 {
			return -1
		}
		v, err := strconv.ParseUint(string(q[:4]), 16, 16)
		if err != nil {
			return -1
		}
		return rune(v)
	}
	r := hex4(q)
	if r < 0 {
		return utf8.RuneError, 0
	}
	if utf16.IsSurrogate(r) {
		if len(q) >= 10 && q[4] == '\\' && q[5] == 'u' {
			if r2 := hex4(q[6:]); r2 >= 0 {
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					return p, 10
				}
			}
		}
		return utf8.RuneError, 4
	}
	return r, 4
}
