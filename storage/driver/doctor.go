package driver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Check outcomes. A Fail makes `signet doctor` exit non-zero; a Warn is a
// recommendation; Skip means the check does not apply or the store cannot
// answer it (the Detail says which).
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
	CheckSkip = "skip"
)

// Check is the result of one connector check.
type Check struct {
	Name   string `json:"name"`   // stable, such as "bucket" or "cors"
	Status string `json:"status"` // CheckOK, CheckWarn, CheckFail or CheckSkip
	Detail string `json:"detail"` // what was found; never a secret
	Fix    string `json:"fix,omitempty"`
}

// DiagnoseOptions is what the checks compare the store against.
type DiagnoseOptions struct {
	// Origins are the browser origins that must be allowed by CORS; none
	// means no browser clients, and the CORS check is skipped.
	Origins []string
	// Networks is the team's allow-list; when non-empty, the bucket policy
	// must deny the team's prefix from elsewhere.
	Networks []netip.Prefix
	// Team names the team, for fixes that name it.
	Team string
}

// Doctor is implemented by backends that can check their store's
// configuration. Diagnose makes read-only calls only and reports every
// finding as a Check; it returns an error only when it cannot run at all.
type Doctor interface {
	Diagnose(ctx context.Context, opts *DiagnoseOptions) ([]Check, error)
}

// SkewWarn is the clock skew between signet and a store past which
// ClockCheck warns.
const SkewWarn = 30 * time.Second

// ClockCheck compares the store's Date header (HTTP date, whole seconds)
// with signet's clock now: ok within SkewWarn, warn up to fail, fail
// beyond. refusal says what the store does with URLs dated that far off.
// A missing or malformed Date skips the check.
func ClockCheck(now time.Time, date string, fail time.Duration, refusal string) Check {
	c := Check{Name: "clock"}
	if date == "" {
		c.Status, c.Detail = CheckSkip, "the store sent no Date header"
		return c
	}
	t, err := http.ParseTime(date)
	if err != nil {
		c.Status, c.Detail = CheckSkip, "the store's Date header does not parse"
		return c
	}
	skew := t.Sub(now.Truncate(time.Second))
	abs, dir := skew, "ahead of"
	if skew < 0 {
		abs, dir = -skew, "behind"
	}
	c.Detail = fmt.Sprintf("store clock is %s %s signet's", abs, dir)
	const ntp = "synchronise signet's clock with NTP (chrony or systemd-timesyncd)"
	switch {
	case abs > fail:
		c.Status, c.Fix = CheckFail, ntp+": "+refusal
	case abs > SkewWarn:
		c.Status, c.Fix = CheckWarn, ntp
	default:
		c.Status = CheckOK
	}
	return c
}

// NoAnswerCause names, for a check's detail, why a request to the store
// got no answer: connection refused or reset, an unreachable host, a DNS
// failure (naming the host), a timeout, a TLS failure; fallback when the
// cause is none of those. It never quotes err's text, which may hold the
// request's URL, and so a signature or credentials.
func NoAnswerCause(err error, fallback string) string {
	var (
		dns      *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		ne       net.Error
	)
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "DNS: no such host " + dns.Name
	case errors.As(err, &dns) && dns.IsTimeout:
		return "DNS lookup of " + dns.Name + " timed out"
	case errors.As(err, &dns):
		return "DNS lookup of " + dns.Name + " failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &unknown):
		return "TLS: certificate signed by an unknown authority"
	case errors.As(err, &hostname):
		return "TLS: certificate not valid for " + hostname.Host
	case errors.As(err, &invalid):
		return "TLS: certificate not valid (expired, not yet valid or not for this use)"
	case errors.As(err, &record):
		return "TLS: the endpoint does not speak TLS (is it http://?)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	}
	return fallback
}
