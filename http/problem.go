package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/signetdev/signet"
)

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
// never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
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
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxBody bounds every JSON request body; a 10,000-object presign batch
// fits comfortably.
const maxBody = 8 << 20

// decode reads exactly one JSON value into v, refusing unknown fields,
// trailing data and bodies over maxBody.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return signet.Errorf(signet.TooLarge, "request body exceeds %d bytes", maxBody)
		}
		return signet.E("decode", signet.Invalid, "reading request body", err)
	}
	// encoding/json would silently replace invalid UTF-8 with U+FFFD,
	// rewriting keys; refuse such bodies instead.
	if !utf8.Valid(body) {
		return signet.Errorf(signet.Invalid, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return signet.Errorf(signet.Invalid, "request body is empty")
		}
		return signet.E("decode", signet.Invalid, "malformed JSON body: "+jsonProblem(err), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return signet.Errorf(signet.Invalid, "malformed JSON body: trailing data after the JSON value")
	}
	return nil
}

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
