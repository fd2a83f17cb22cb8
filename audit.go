package signet

import "time"

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
	ActionAuditRead       = "audit.read"
	ActionBootstrap       = "instance.bootstrap"
	ActionAuthenticate    = "auth.authenticate"
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
type AuditEvent struct {
	ID        int64     `json:"id"`
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
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	Team  string
	Teams []string // when non-nil, only events of these teams
	Actor string
	// AfterID is the paging cursor: only events with ID > AfterID.
	AfterID int64
	Limit   int // at most this many; 0 means a default
}
