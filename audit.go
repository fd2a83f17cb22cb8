package signet

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Audit actions. Each decision signet takes is recorded under one of these.
const (
	ActionPresignDownload = "presign.download"
	ActionPresignUpload   = "presign.upload"
	ActionUploadCreate    = "upload.create"
	ActionUploadParts     = "upload.parts"
	ActionUploadState     = "upload.state"
	ActionUploadComplete  = "upload.complete"
	ActionUploadAbort     = "upload.abort"
	ActionUploadExpire    = "upload.expire"
	ActionTeamCreate      = "team.create"
	ActionTeamUpdate      = "team.update"
	ActionUserCreate      = "user.create"
	ActionMemberAdd       = "member.add"
	ActionMemberRemove    = "member.remove"
	ActionKeyCreate       = "key.create"
	ActionKeyRevoke       = "key.revoke"
	ActionConnectorSet    = "connector.set"
	ActionConnectorCheck  = "connector.check"
	ActionAuditRead       = "audit.read"
	ActionAuditPrune      = "audit.prune" // retention removed the oldest entries
	ActionUsagePrune      = "usage.prune" // retention removed old usage events
	ActionBootstrap       = "instance.bootstrap"
	ActionAuthenticate    = "auth.authenticate"
	ActionObjectList      = "object.list"   // one page of a team's objects; the prefix is the object key
	ActionRevoke          = "revoke"        // URLs already issued were revoked
	ActionPolicyRender    = "policy.render" // a store-side network policy was rendered
	ActionPolicyApply     = "policy.apply"  // and applied to the bucket
	ActionIngestAllow     = "ingest.allow"  // a service user may ingest store access events
	ActionIngestRevoke    = "ingest.revoke" // it may no longer
	ActionUsageIngest     = "usage.ingest"  // recorded when an ingest is refused
	ActionUsageRead       = "usage.read"    // a usage report was read
	// Reads recorded only when refused; allowed, they are not recorded.
	ActionTeamRead       = "team.read"
	ActionConnectorRead  = "connector.read"
	ActionMemberList     = "member.list"
	ActionUserList       = "user.list"
	ActionKeyList        = "key.list"
	ActionRevocationList = "revocation.list"
	// ActionRequest records the refusal of a request that no other action
	// names; the event's Target is the route.
	ActionRequest = "request"
)

// Audit outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// AuditEvent is one record of the audit log. It never holds a URL, a
// signature or any other secret: GrantID is an opaque correlation id that
// also appears in the issued URL, so store access logs can be joined to it.
//
// The log is a hash chain (see package auditlog and docs/audit.md): Seq
// numbers the events 1, 2, 3, ... without gaps, in commit order, and Hash
// covers every other field together with PrevHash, the Hash of the event
// before (zero for the first). The store sets ID, Seq, PrevHash and Hash
// when it appends the event.
type AuditEvent struct {
	ID        int64     `json:"id"`
	Seq       int64     `json:"seq"` // position in the chain; equal to ID
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	ActorUser string    `json:"actor_user,omitempty"`
	ActorKey  string    `json:"actor_key,omitempty"` // API key id, never the secret
	Team      string    `json:"team,omitempty"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"`
	Code      Code      `json:"code,omitempty"`   // error code when not allowed
	Reason    string    `json:"reason,omitempty"` // user-safe explanation
	Store     string    `json:"store,omitempty"`  // backend name
	Bucket    string    `json:"bucket,omitempty"`
	ObjectKey string    `json:"object_key,omitempty"` // full key in the bucket
	UploadID  string    `json:"upload_id,omitempty"`
	GrantID   string    `json:"grant_id,omitempty"`
	Method    string    `json:"method,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	ClientIP  string    `json:"client_ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// Target names the subject of an admin change (a user, key id, ...).
	Target string `json:"target,omitempty"`

	PrevHash AuditHash `json:"prev_hash"`
	Hash     AuditHash `json:"hash"`
}

// AuditFilter selects audit events. Zero fields do not filter; the
// fields that are set must all match.
type AuditFilter struct {
	Team  string
	Teams []string // when non-nil, only events of these teams
	Actor string   // ActorUser equals
	// Action and Outcome, when set, must equal the event's.
	Action  string
	Outcome string
	// KeyPrefix selects events whose ObjectKey starts with it, byte for
	// byte. It must not end inside a UTF-8 character (see Check).
	KeyPrefix string
	// Since and Until bound the event's Time: Since <= Time < Until.
	// Bounds finer than the stored microsecond are rounded up.
	Since time.Time
	Until time.Time
	// AfterID is the paging cursor: only events with ID > AfterID.
	AfterID int64
	Limit   int // at most this many; 0 means a default
}

// CheckAuditEvents returns an Invalid error, with op, unless every event
// can be appended: not nil, with an Action and an Outcome.
func CheckAuditEvents(op string, events []*AuditEvent) error {
	for _, e := range events {
		if e == nil || e.Action == "" || e.Outcome == "" {
			return E(op, Invalid, "audit event needs an action and an outcome", nil)
		}
	}
	return nil
}

// MaxAuditPage is the most events a page of Tx.Audit or
// UsageTx.IssuedGrants holds.
const MaxAuditPage = 1000

// AuditPageLimit returns how many events a page of Tx.Audit or
// UsageTx.IssuedGrants asked for with limit holds: 100 when limit is 0 or
// less, never more than MaxAuditPage.
func AuditPageLimit(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, MaxAuditPage)
}

// Check returns an Invalid error if f cannot be answered exactly: a
// KeyPrefix that ends inside a UTF-8 character, which a store keeping
// text as UTF-8 cannot compare byte for byte with the keys it holds.
// Stores call it in Audit.
func (f AuditFilter) Check() error {
	p := f.KeyPrefix
	for i := 0; i < len(p); {
		if !utf8.FullRuneInString(p[i:]) {
			return Errorf(Invalid, "prefix ends inside a UTF-8 character")
		}
		_, n := utf8.DecodeRuneInString(p[i:])
		i += n
	}
	return nil
}

// AuditHash is a SHA-256 digest in the audit chain. It reads and writes as
// 64 lower-case hex digits.
type AuditHash [32]byte

// String returns h in hex.
func (h AuditHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes h in hex.
func (h AuditHash) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText decodes 64 hex digits.
func (h *AuditHash) UnmarshalText(b []byte) error {
	if len(b) != hex.EncodedLen(len(h)) {
		return fmt.Errorf("audit hash: want %d hex digits, got %d", hex.EncodedLen(len(h)), len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("audit hash: %w", err)
	}
	return nil
}

// ParseAuditHash decodes 64 hex digits.
func ParseAuditHash(s string) (AuditHash, error) {
	var h AuditHash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// AuditHead is the end of the audit chain: the Seq and Hash of the last
// event appended, or zero values for an empty log.
type AuditHead struct {
	Seq  int64     `json:"seq"`
	Hash AuditHash `json:"hash"`
}

// auditString is one string field of an AuditEvent: its JSON name and
// its address.
type auditString struct {
	name string
	p    *string
}

// auditStrings lists the string fields of e.
func auditStrings(e *AuditEvent) []auditString {
	code := (*string)(&e.Code)
	return []auditString{
		{"request_id", &e.RequestID}, {"actor_user", &e.ActorUser}, {"actor_key", &e.ActorKey},
		{"team", &e.Team}, {"action", &e.Action}, {"outcome", &e.Outcome}, {"code", code},
		{"reason", &e.Reason}, {"store", &e.Store}, {"bucket", &e.Bucket}, {"object_key", &e.ObjectKey},
		{"upload_id", &e.UploadID}, {"grant_id", &e.GrantID}, {"method", &e.Method},
		{"client_ip", &e.ClientIP}, {"user_agent", &e.UserAgent}, {"target", &e.Target},
	}
}

// auditJSON is AuditEvent without its JSON methods.
type auditJSON AuditEvent

// MarshalJSON encodes e as an object of its fields. JSON strings carry
// only valid UTF-8, and an event may record bytes that are not (a refused
// key, a truncated User-Agent), which the hash chain covers exactly: such
// a field also appears, byte for byte in base64, under "raw", keyed by the
// field's name, so that an export can be verified.
func (e AuditEvent) MarshalJSON() ([]byte, error) {
	var raw map[string][]byte
	for _, f := range auditStrings(&e) {
		if !utf8.ValidString(*f.p) {
			if raw == nil {
				raw = make(map[string][]byte)
			}
			raw[f.name] = []byte(*f.p)
		}
	}
	return json.Marshal(struct {
		auditJSON
		Raw map[string][]byte `json:"raw,omitempty"`
	}{auditJSON(e), raw})
}

// UnmarshalJSON decodes what MarshalJSON encodes, restoring from "raw"
// the exact bytes of fields that are not valid UTF-8.
func (e *AuditEvent) UnmarshalJSON(b []byte) error {
	v := struct {
		*auditJSON
		Raw map[string][]byte `json:"raw"`
	}{auditJSON: (*auditJSON)(e)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if len(v.Raw) == 0 {
		return nil
	}
	fields := auditStrings(e)
	for name, val := range v.Raw {
		i := slices.IndexFunc(fields, func(f auditString) bool { return f.name == name })
		if i < 0 {
			return fmt.Errorf("audit event: raw value for unknown field %q", name)
		}
		*fields[i].p = string(val)
	}
	return nil
}
