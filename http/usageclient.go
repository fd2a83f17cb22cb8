package http

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/signetdev/signet"
)

// Client methods for "issued versus used" (see ingest.go and usage.go).

// UsageQuery selects a usage report. Zero fields do not filter.
type UsageQuery struct {
	Team         string // empty: every team (instance admins)
	Since, Until time.Time
	Unused       bool // only grants never used
	Outside      bool // only grants used from outside the team's networks
	Cursor       string
	// Limit is the page size, 1 to signet.MaxAuditPage; 0 asks for the
	// server's default. Any other value is sent as it is, so that the
	// server refuses it rather than answering its default page.
	Limit int
}

func (q UsageQuery) path() string {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Unused {
		v.Set("unused", "true")
	}
	if q.Outside {
		v.Set("outside", "true")
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	p := "/v1/usage"
	if q.Team != "" {
		p = teamPath(q.Team, "usage")
	}
	if len(v) > 0 {
		p += "?" + v.Encode()
	}
	return p
}

// Usage returns one page of the usage report q selects.
func (c *Client) Usage(ctx context.Context, q UsageQuery) (*UsagePage, error) {
	var out UsagePage
	return &out, c.do(ctx, http.MethodGet, q.path(), nil, &out)
}

// Ingest sends a store's access records to signet: source is
// signet.UsageSourceMinIO (audit webhook entries, JSON) or
// signet.UsageSourceS3AccessLog (log lines, at most 8 MiB per call).
func (c *Client) Ingest(ctx context.Context, source string, body io.Reader) (*IngestResult, error) {
	ctype := "text/plain; charset=utf-8"
	switch source {
	case signet.UsageSourceMinIO:
		ctype = "application/json"
	case signet.UsageSourceS3AccessLog:
	default:
		return nil, signet.Errorf(signet.Invalid, "unknown usage source %q", source)
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/ingest/"+source, ctype, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out IngestResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, signet.E("client", signet.Internal, "malformed answer from server", err)
	}
	return &out, nil
}

// SetIngestUser allows (allow) or stops a service user to ingest usage
// events (instance admins).
func (c *Client) SetIngestUser(ctx context.Context, user string, allow bool) (*IngestUser, error) {
	method := http.MethodPut
	if !allow {
		method = http.MethodDelete
	}
	var out IngestUser
	return &out, c.do(ctx, method, "/v1/ingest/users/"+url.PathEscape(user), nil, &out)
}
