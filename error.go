package signet

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class. Codes are part of the API:
// clients and tests compare them, never error text.
type Code string

const (
	Invalid          Code = "invalid"
	InvalidKey       Code = "invalid_key"
	InvalidExpiry    Code = "invalid_expiry"
	InvalidPart      Code = "invalid_part"
	Unauthenticated  Code = "unauthenticated"
	PermissionDenied Code = "permission_denied"
	NotFound         Code = "not_found"
	Conflict         Code = "conflict"
	TooLarge         Code = "too_large"
	ChecksumMismatch Code = "checksum_mismatch"
	RateLimited      Code = "rate_limited"
	Unimplemented    Code = "unimplemented"
	Unavailable      Code = "unavailable"
	Internal         Code = "internal"
)

// Error is signet's one error type. Msg is safe to show to a user; Err is the
// underlying cause and is only ever logged.
type Error struct {
	Code Code
	Op   string // operation, e.g. "sqlite.CreateTeam"
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// E wraps err with an operation name and code. The message shown to users is
// msg; err stays internal.
func E(op string, code Code, msg string, err error) *Error {
	return &Error{Op: op, Code: code, Msg: msg, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the user-safe message of err. Errors that are not
// *Error yield a generic message so internal details never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Msg != "" {
		return e.Msg
	}
	if errors.As(err, &e) && e.Code != Internal {
		return string(e.Code)
	}
	return "internal error"
}
