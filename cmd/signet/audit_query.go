package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// parseAge parses a duration as time.ParseDuration does, and also whole
// days ("30d"), which Go durations lack.
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 90m, 24h or 30d", s)
	}
	return dur, nil
}

// timeFlag is a flag holding an instant, given as an RFC 3339 time or as
// an age (a duration such as 24h or 7d), meaning that long before now.
type timeFlag struct {
	t   *time.Time
	now func() time.Time
}

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f timeFlag) Type() string { return "time" }

func (f timeFlag) Set(s string) error {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*f.t = t
		return nil
	}
	d, err := parseAge(s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time (2026-01-02T15:04:05Z) or an age (24h, 7d): %q", s)
	}
	if d < 0 {
		return fmt.Errorf("age %q is negative", s)
	}
	*f.t = f.now().Add(-d)
	return nil
}

// limitFlag is a --limit flag: a page size from 1 to signet.MaxAuditPage,
// which the API also requires. It refuses anything else when parsed,
// because the client sends no limit for 0 and the server would answer
// its default page instead.
type limitFlag struct{ n *int }

func (f limitFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return strconv.Itoa(*f.n)
}

func (f limitFlag) Type() string { return "int" }

func (f limitFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > signet.MaxAuditPage {
		return fmt.Errorf("want a number from 1 to %d", signet.MaxAuditPage)
	}
	*f.n = n
	return nil
}

// addLimitFlag adds --limit, of default def, writing into n.
func addLimitFlag(fs *pflag.FlagSet, n *int, def int, usage string) {
	*n = def
	fs.Var(limitFlag{n}, "limit", usage)
}

// addAuditQueryFlags adds the filters of GET /v1/audit to fs, writing
// into q.
func addAuditQueryFlags(fs *pflag.FlagSet, q *sighttp.AuditQuery) {
	fs.StringVar(&q.Team, "team", "", "only this team's events")
	fs.StringVar(&q.Actor, "actor", "", "only this user's events")
	fs.StringVar(&q.Action, "action", "", "only events of this action (e.g. presign.download, key.revoke)")
	fs.StringVar(&q.Outcome, "outcome", "", "only events with this outcome: allowed, denied or error")
	fs.StringVar(&q.Prefix, "prefix", "", "only events whose object key starts with this")
	fs.Var(timeFlag{&q.Since, time.Now}, "since", "only events at or after this time: RFC 3339, or an age such as 24h or 7d")
	fs.Var(timeFlag{&q.Until, time.Now}, "until", "only events before this time: RFC 3339, or an age such as 1h")
}
