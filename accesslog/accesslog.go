// Package accesslog reads the access records stores keep of the requests
// they serve (MinIO's audit webhook events, S3 server access log lines)
// into signet.UsageEvents: the requests made with URLs signet issued,
// recognised by the grant id in their query (signet.GrantParam).
//
// Only the fields of signet.UsageEvent are kept. The signature, the
// credential, the rest of the query string, the request and response
// headers and anything else a record holds are dropped while parsing and
// never leave this package.
package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
)

// maxGrantID bounds a grant id read from a record; signet issues 16
// characters.
const maxGrantID = 128

// validGrant reports whether s can be a grant id: 1 to 128 characters of
// [A-Za-z0-9._~-], as storage.SignOptions requires.
func validGrant(s string) bool {
	return s != "" && len(s) <= maxGrantID && storage.IsToken(s)
}

// minioEntry is the part of a MinIO audit log entry (madmin-go's
// logger/audit.Entry, version "1") that a usage event needs. Other fields,
// requestHeader, requestClaims and the rest of requestQuery among them,
// are not decoded.
type minioEntry struct {
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	API     struct {
		Name       string `json:"name"`
		Bucket     string `json:"bucket"`
		Object     string `json:"object"`
		StatusCode int    `json:"statusCode"`
		RX         int64  `json:"rx"`
		TX         int64  `json:"tx"`
	} `json:"api"`
	RemoteHost string `json:"remotehost"`
	RequestID  string `json:"requestID"`
	// requestQuery is decoded as raw values and only signet.GrantParam is
	// kept from it.
	RequestQuery map[string]json.RawMessage `json:"requestQuery"`
}

// MinIO reads MinIO audit webhook payloads from r: one JSON entry (batch
// size 1, the default) or several, one after another (MinIO writes a
// batch as newline-separated entries). It returns the usage events of the
// entries that carry a grant id and the number of entries it skipped
// (other requests: without a grant id, or with one that is malformed).
// Invalid when r holds something other than JSON objects.
func MinIO(r io.Reader) (events []*signet.UsageEvent, skipped int, err error) {
	const op = "accesslog.MinIO"
	dec := json.NewDecoder(r)
	for {
		var e minioEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return events, skipped, nil
		}
		if err != nil {
			return nil, 0, signet.E(op, signet.Invalid, "payload is not a stream of MinIO audit entries", err)
		}
		ev := e.usage()
		if ev == nil {
			skipped++
			continue
		}
		events = append(events, ev)
	}
}

func (e *minioEntry) usage() *signet.UsageEvent {
	raw, ok := e.RequestQuery[signet.GrantParam]
	if !ok || e.Time.IsZero() {
		return nil
	}
	var grant string
	if json.Unmarshal(raw, &grant) != nil || !validGrant(grant) {
		return nil
	}
	return &signet.UsageEvent{
		Time:          e.Time,
		Source:        signet.UsageSourceMinIO,
		RequestID:     e.RequestID,
		GrantID:       grant,
		Bucket:        e.API.Bucket,
		ObjectKey:     e.API.Object,
		Method:        minioMethod(e.API.Name),
		Operation:     e.API.Name,
		Status:        e.API.StatusCode,
		BytesSent:     max(e.API.TX, 0), // -1: unknown
		BytesReceived: max(e.API.RX, 0), // the request's Content-Length; -1: unknown
		RemoteAddr:    e.RemoteHost,
	}
}

// minioMethod infers the HTTP method from MinIO's API name (the entry has
// none): GetObject, HeadObject, PutObject, PutObjectPart, ...
func minioMethod(api string) string {
	switch {
	case strings.HasPrefix(api, "Head"):
		return "HEAD"
	case strings.HasPrefix(api, "Get"), strings.HasPrefix(api, "List"):
		return "GET"
	case strings.HasPrefix(api, "Put"), strings.HasPrefix(api, "Copy"):
		return "PUT"
	case strings.HasPrefix(api, "Delete"), api == "AbortMultipartUpload":
		return "DELETE"
	case api == "NewMultipartUpload", api == "CompleteMultipartUpload", strings.HasPrefix(api, "Post"):
		return "POST"
	}
	return ""
}

// S3 server access log lines: space-separated fields, of which some are
// bracketed ([06/Feb/2019:00:00:38 +0000]) or quoted ("GET /k HTTP/1.1")
// and "-" stands for none. Fields, in order (AWS documents more after
// them, which are ignored):
const (
	s3Owner = iota
	s3Bucket
	s3Time
	s3RemoteIP
	s3Requester
	s3RequestID
	s3Operation
	s3Key
	s3RequestURI
	s3Status
	s3ErrorCode
	s3BytesSent
	s3ObjectSize
	s3TotalTime
	s3TurnAround
	s3Referer
	s3UserAgent
	s3MinFields // every line has at least the fields above
)

// s3TimeLayout is the time field without its brackets.
const s3TimeLayout = "02/Jan/2006:15:04:05 -0700"

// S3Line parses one S3 server access log line. It returns nil and no
// error for a line of a request without a grant id (or with a malformed
// one) and Invalid for a line that is not in the format.
//
// BytesSent is the line's Bytes Sent. The format records no request body
// size; for a served PUT, BytesReceived is the Object Size (the object or
// part uploaded).
func S3Line(line string) (*signet.UsageEvent, error) {
	const op = "accesslog.S3Line"
	f, err := splitS3(line)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, err.Error(), nil)
	}
	if len(f) < s3MinFields {
		return nil, signet.E(op, signet.Invalid, fmt.Sprintf("S3 access log line has %d fields, want at least %d", len(f), s3MinFields), nil)
	}
	at, err := time.Parse(s3TimeLayout, f[s3Time])
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "S3 access log line has a malformed time", nil)
	}
	// Request-URI: "METHOD /path?query HTTP/1.1"
	method, rest, _ := strings.Cut(f[s3RequestURI], " ")
	target, _, _ := strings.Cut(rest, " ")
	_, rawQuery, _ := strings.Cut(target, "?")
	q, err := url.ParseQuery(rawQuery)
	grant := ""
	if err == nil && len(q[signet.GrantParam]) == 1 {
		grant = q[signet.GrantParam][0]
	}
	if !validGrant(grant) {
		return nil, nil
	}
	status, err := number(f[s3Status])
	if err != nil || status > 999 {
		return nil, signet.E(op, signet.Invalid, "S3 access log line has a malformed status", nil)
	}
	sent, err := number(f[s3BytesSent])
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "S3 access log line has malformed bytes sent", nil)
	}
	size, err := number(f[s3ObjectSize])
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "S3 access log line has a malformed object size", nil)
	}
	ev := &signet.UsageEvent{
		Time:       at,
		Source:     signet.UsageSourceS3AccessLog,
		RequestID:  none(f[s3RequestID]),
		GrantID:    grant,
		Bucket:     none(f[s3Bucket]),
		ObjectKey:  none(f[s3Key]),
		Method:     none(method),
		Operation:  none(f[s3Operation]),
		Status:     int(status),
		BytesSent:  sent,
		RemoteAddr: none(f[s3RemoteIP]),
	}
	if k, err := url.PathUnescape(ev.ObjectKey); err == nil {
		ev.ObjectKey = k
	}
	if ev.Method == "PUT" && ev.Status >= 200 && ev.Status < 300 {
		ev.BytesReceived = size
	}
	return ev, nil
}

// none maps the log's "-" to "".
func none(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// number reads a non-negative count; "-" is 0.
func number(s string) (int64, error) {
	if s == "-" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n < 0 {
		err = errors.New("negative")
	}
	return n, err
}

// splitS3 splits a line into fields: separated by spaces, "quoted" or
// [bracketed], the quotes and brackets removed.
func splitS3(line string) ([]string, error) {
	line = strings.TrimRight(line, "\r\n")
	var f []string
	for i := 0; i < len(line); {
		switch line[i] {
		case ' ':
			i++
		case '"':
			// A quoted field ends at a quote followed by a space or the
			// end of the line, so a quote inside a User-Agent does not end
			// it.
			j := i + 1
			for ; j < len(line); j++ {
				if line[j] == '"' && (j+1 == len(line) || line[j+1] == ' ') {
					break
				}
			}
			if j >= len(line) {
				return nil, errors.New("S3 access log line has an unterminated quoted field")
			}
			f = append(f, line[i+1:j])
			i = j + 1
		case '[':
			j := strings.IndexByte(line[i:], ']')
			if j < 0 {
				return nil, errors.New("S3 access log line has an unterminated bracketed field")
			}
			f = append(f, line[i+1:i+j])
			i += j + 1
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			f = append(f, line[i:i+j])
			i += j
		}
	}
	return f, nil
}

// S3Stats counts what S3Lines read.
type S3Stats struct {
	Lines   int // lines read, blank ones excluded
	Events  int // lines with a grant id, returned as events
	Skipped int // lines without a grant id
}

// maxS3Line bounds a line; AWS lines are well under 8 KiB, even with a
// long key, query and user agent.
const maxS3Line = 1 << 20

// S3Lines reads S3 server access log lines from r and calls fn with the
// usage events of the lines that carry a grant id, in batches of at most
// batch. A malformed line stops it with an Invalid error that names the
// line's number (counted from 1), after the batches before it.
func S3Lines(r io.Reader, batch int, fn func([]*signet.UsageEvent) error) (S3Stats, error) {
	var st S3Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxS3Line)
	var evs []*signet.UsageEvent
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		st.Lines++
		ev, err := S3Line(string(line))
		if err != nil {
			var se *signet.Error
			if errors.As(err, &se) {
				se.Msg = fmt.Sprintf("line %d: %s", n, se.Msg)
			}
			return st, err
		}
		if ev == nil {
			st.Skipped++
			continue
		}
		st.Events++
		evs = append(evs, ev)
		if len(evs) >= batch {
			if err := fn(evs); err != nil {
				return st, err
			}
			evs = nil
		}
	}
	if err := sc.Err(); err != nil {
		return st, signet.E("accesslog.S3Lines", signet.Invalid, fmt.Sprintf("after line %d: %v", n, err), err)
	}
	if len(evs) > 0 {
		if err := fn(evs); err != nil {
			return st, err
		}
	}
	return st, nil
}
