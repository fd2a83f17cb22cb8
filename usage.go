package signet

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Issued versus used: signet records every URL it issues with a grant id
// (AuditEvent.GrantID), and stores carry that id in the URL's query
// (GrantParam). The stores' own access records (MinIO's audit webhook, S3
// server access logs), and the built-in local store's record of what it
// served, are stored as UsageEvents and joined to the audit log by grant
// id, to tell which issued URLs were used, from where, how many bytes
// moved, and which were never used. See docs/audit.md.

// GrantParam is the query parameter that carries the grant id in the URLs
// of the S3, GCS and Azure drivers.
const GrantParam = "x-signet-grant"

// Usage sources: where a UsageEvent came from.
const (
	UsageSourceMinIO       = "minio"         // MinIO's audit webhook
	UsageSourceS3AccessLog = "s3-access-log" // S3 server access log lines
	// UsageSourceLocal is the built-in local store reporting the requests
	// it served itself: Operation is GetObject, HeadObject, PutObject or
	// PutObjectPart (MinIO's names), RequestID the X-Request-Id it
	// answered with.
	UsageSourceLocal = "local"
)

// IngestSetting is the prefix of the instance setting that lets a user
// ingest usage events: IngestSetting+name is "on" when user name may.
const IngestSetting = "ingest.user."

// UsageTx holds the Tx methods of a store that keeps usage events. Both
// signet stores (SQLite and PostgreSQL) implement it; it is a separate
// interface, found with UsageOf, so that Tx stays what every metadata
// store must do.
type UsageTx interface {
	// AppendUsage stores access events that stores reported, setting their
	// IDs, and IngestedAt when zero, and returns how many it stored: an
	// event with the Source and RequestID (not empty) of one already stored
	// is skipped. Invalid if an event lacks a Time, Source or GrantID; then
	// none is stored.
	AppendUsage(events ...*UsageEvent) (int, error)
	// IssuedGrants returns the allowed audit events that carry a grant id
	// and match f, in ascending ID order, at most f.Limit of them (100 when
	// 0, never more than 1000).
	IssuedGrants(f GrantFilter) ([]*AuditEvent, error)
	// GrantUsage sums the stored usage events of the grants per grant and
	// remote address, in no particular order; grants without usage events
	// have no entry.
	GrantUsage(grantIDs []string) ([]*AddressUsage, error)
}

// UsageOf returns the usage methods of tx, or Unimplemented when its
// store keeps no usage events.
func UsageOf(tx Tx) (UsageTx, error) {
	u, ok := tx.(UsageTx)
	if !ok {
		return nil, Errorf(Unimplemented, "this metadata store does not keep usage events")
	}
	return u, nil
}

// UsageEvent is one request a store reported having served with an issued
// URL. It holds only what the report needs: never the signature, the
// credential, the query string or any header of the request.
type UsageEvent struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"` // when the store served the request
	Source string    `json:"source"`
	// RequestID is the store's own id for the request. A second event of
	// the same Source with the same RequestID is a duplicate and ignored.
	RequestID string `json:"request_id,omitempty"`
	GrantID   string `json:"grant_id"`
	Bucket    string `json:"bucket,omitempty"`
	ObjectKey string `json:"object_key,omitempty"`
	Method    string `json:"method,omitempty"`    // HTTP method, when known
	Operation string `json:"operation,omitempty"` // the store's name: GetObject, REST.GET.OBJECT
	Status    int    `json:"status,omitempty"`    // HTTP status; 0 when unknown
	// BytesSent went to the client (the response body); BytesReceived came
	// from it (the request body). Zero when the store did not say.
	BytesSent     int64     `json:"bytes_sent"`
	BytesReceived int64     `json:"bytes_received"`
	RemoteAddr    string    `json:"remote_addr,omitempty"` // the client's address as the store saw it
	IngestedAt    time.Time `json:"ingested_at"`
}

// CheckUsageEvents returns an Invalid error, with op, unless every event
// can be stored: not nil, with a Time, Source and GrantID, and byte counts
// that are not negative.
func CheckUsageEvents(op string, events []*UsageEvent) error {
	for _, e := range events {
		switch {
		case e == nil:
			return E(op, Invalid, "usage event is nil", nil)
		case e.Time.IsZero() || e.Source == "" || e.GrantID == "":
			return E(op, Invalid, "usage event needs a time, a source and a grant id", nil)
		case e.BytesSent < 0 || e.BytesReceived < 0:
			return E(op, Invalid, "usage event byte counts cannot be negative", nil)
		}
	}
	return nil
}

// Succeeded reports whether the store served the request (a 1xx, 2xx or
// 3xx status): a use of the URL rather than a refused attempt.
func (e *UsageEvent) Succeeded() bool { return e.Status >= 100 && e.Status < 400 }

// GrantFilter selects the URLs signet issued: allowed audit events that
// carry a grant id. Zero fields do not filter.
type GrantFilter struct {
	Team  string
	Teams []string // when non-nil, only grants of these teams
	// Since and Until bound the issue time: Since <= time < Until.
	Since, Until time.Time
	// AfterID is the paging cursor: only events with ID > AfterID.
	AfterID int64
	Limit   int // at most this many; 0 means 100, never more than 1000
}

// AddressUsage sums the requests made with one grant from one address.
type AddressUsage struct {
	GrantID    string `json:"-"`
	RemoteAddr string `json:"remote_addr"`
	// Uses counts the requests the store served (UsageEvent.Succeeded);
	// Failed the others: refused (expired, tampered, denied) or of
	// unknown status.
	Uses   int64 `json:"uses"`
	Failed int64 `json:"failed,omitempty"`
	// Bytes of every request, served or refused.
	BytesSent     int64     `json:"bytes_sent"`
	BytesReceived int64     `json:"bytes_received"`
	First         time.Time `json:"first"`
	Last          time.Time `json:"last"`
	// Outside is set when the address is not in the team's allowed
	// networks (or is not an address at all while the team has some).
	Outside bool `json:"outside,omitempty"`
}

// GrantUsage is what became of one issued grant: the URL (or, for the
// parts of an upload, the URLs) signet issued, and its uses.
type GrantUsage struct {
	GrantID   string    `json:"grant_id"`
	AuditID   int64     `json:"audit_id"` // the audit entry that issued it
	Team      string    `json:"team"`
	Action    string    `json:"action"`
	Method    string    `json:"method,omitempty"`
	Bucket    string    `json:"bucket,omitempty"`
	ObjectKey string    `json:"object_key,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	IssuedTo  string    `json:"issued_to,omitempty"`    // the actor
	IssuedIP  string    `json:"issued_to_ip,omitempty"` // the address it asked from

	Used          bool  `json:"used"`
	Uses          int64 `json:"uses"`
	Failed        int64 `json:"failed,omitempty"`
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	// FirstSeen and LastSeen bound the requests made with the grant,
	// served or refused.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Outside is set when any request with the grant came from outside
	// the team's allowed networks.
	Outside   bool            `json:"outside,omitempty"`
	Addresses []*AddressUsage `json:"addresses,omitempty"`
}

// JoinUsage builds the usage of each issued grant, in the order of issued,
// from the per-address sums of its requests. teams gives each team's
// allowed networks as they are now; a team missing from it, or without
// networks, has no outside uses.
func JoinUsage(issued []*AuditEvent, usage []*AddressUsage, teams map[string]*Team) []*GrantUsage {
	byGrant := make(map[string][]*AddressUsage)
	for _, u := range usage {
		byGrant[u.GrantID] = append(byGrant[u.GrantID], u)
	}
	out := make([]*GrantUsage, 0, len(issued))
	for _, e := range issued {
		g := &GrantUsage{
			GrantID: e.GrantID, AuditID: e.ID, Team: e.Team, Action: e.Action, Method: e.Method,
			Bucket: e.Bucket, ObjectKey: e.ObjectKey, IssuedAt: e.Time, ExpiresAt: e.ExpiresAt,
			IssuedTo: e.ActorUser, IssuedIP: e.ClientIP,
		}
		team := teams[e.Team]
		for _, u := range byGrant[e.GrantID] {
			a := *u
			a.Outside = team != nil && !team.allowsAddr(a.RemoteAddr)
			g.Uses += a.Uses
			g.Failed += a.Failed
			g.BytesSent += a.BytesSent
			g.BytesReceived += a.BytesReceived
			g.Outside = g.Outside || a.Outside
			if g.FirstSeen.IsZero() || a.First.Before(g.FirstSeen) {
				g.FirstSeen = a.First
			}
			if a.Last.After(g.LastSeen) {
				g.LastSeen = a.Last
			}
			g.Addresses = append(g.Addresses, &a)
		}
		g.Used = g.Uses > 0
		slices.SortFunc(g.Addresses, func(a, b *AddressUsage) int {
			return cmp.Or(cmp.Compare(b.Uses, a.Uses), cmp.Compare(a.RemoteAddr, b.RemoteAddr))
		})
		out = append(out, g)
	}
	return out
}

// allowsAddr reports whether a store-reported address is in the team's
// networks. Stores write IPv6 addresses in brackets and some add a port;
// anything that is not an address is outside a team that has networks.
func (t *Team) allowsAddr(s string) bool {
	if len(t.AllowNetworks) == 0 {
		return true
	}
	addr, ok := ParseRemoteAddr(s)
	if !ok {
		return false
	}
	_, in := t.AllowsFrom(addr)
	return in
}

// ParseRemoteAddr reads a client address as stores report it: 192.0.2.1,
// 2001:db8::1, [2001:db8::1], or any of them with a port.
func ParseRemoteAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if s, ok = strings.CutSuffix(inner, "]"); !ok {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
