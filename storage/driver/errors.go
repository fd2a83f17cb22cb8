package driver

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/signetdev/signet"
)

// StatusCode maps the HTTP status of a store's error answer to a signet
// code, for a driver whose store named no error code it knows: 404
// NotFound, 401 and 403 PermissionDenied, 409 and 412 Conflict, 429 and
// 5xx Unavailable, other 4xx Invalid. It returns "" below 400.
func StatusCode(st int) signet.Code {
	switch {
	case st == 404:
		return signet.NotFound
	case st == 401 || st == 403:
		return signet.PermissionDenied
	case st == 409 || st == 412:
		return signet.Conflict
	case st == 429 || st >= 500:
		return signet.Unavailable
	case st >= 400:
		return signet.Invalid
	}
	return ""
}

// NoAnswer reports whether err means the store gave no whole answer: it
// could not be reached (a net.Error), the answer was cut short, or the
// context ended first. Drivers report such errors as Unavailable.
func NoAnswer(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
