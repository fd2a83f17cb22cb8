// Package signet holds the domain of the signet pre-signed URL broker: teams,
// users, roles, API keys, storage connectors, uploads and audit events, the
// pure access policy over them, and the interface of the metadata store.
//
// Adapters live in sub-packages named after their technology (sqlite, http,
// storage/fileblob); cmd/signet wires them together.
package signet

import (
	"net/netip"
	"time"
)

// Role is a user's role in a team.
type Role string

const (
	RoleViewer Role = "viewer" // may download
	RoleMember Role = "member" // may download and upload
	RoleAdmin  Role = "admin"  // may also manage the team's members and connector
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return r == RoleViewer || r == RoleMember || r == RoleAdmin
}

// Team is a group of users mapped to one storage connector.
type Team struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// DownloadMaxExpiry and UploadMaxExpiry cap the lifetime of URLs issued
	// for the team. Zero means the instance default.
	DownloadMaxExpiry time.Duration `json:"-"`
	UploadMaxExpiry   time.Duration `json:"-"`
	// AllowNetworks, when not empty, are the only client networks that may
	// obtain URLs for the team; where the store can, URLs are bound to the
	// network the client is in.
	AllowNetworks []netip.Prefix `json:"allow_networks,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
}

// User is a human or a service account.
type User struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Service bool   `json:"service"`
	// Admin users administer the whole instance.
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a user's membership in a team.
type Member struct {
	Team      string    `json:"team"`
	User      string    `json:"user"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKey is the stored form of an API key. The secret itself is never
// stored; only its SHA-256 hash.
type APIKey struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Backend names.
const (
	BackendLocal = "local"
	BackendS3    = "s3"
	BackendGCS   = "gcs"
	BackendAzure = "azure"
)

// Backends lists every backend name a connector may have.
var Backends = []string{BackendLocal, BackendS3, BackendGCS, BackendAzure}

// Connector maps a team to a bucket (and optional prefix) in one store.
// Credentials are never held here: CredentialsRef names a secret kept
// elsewhere (encrypted at rest), so a Connector is always safe to show.
type Connector struct {
	Team     string `json:"team"`
	Backend  string `json:"backend"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// CredentialsRef names the stored credentials the connector signs with;
	// empty means the server's ambient credentials (or none for local).
	CredentialsRef string `json:"credentials_ref,omitempty"`
	// Options holds backend-specific settings (path style, KMS key, ...).
	Options   map[string]string `json:"options,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Upload is a chunked upload session.
type Upload struct {
	ID            string    `json:"id"`
	Team          string    `json:"team"`
	Key           string    `json:"key"` // relative to the team's space
	Size          int64     `json:"size"`
	PartSize      int64     `json:"part_size"`
	PartCount     int       `json:"part_count"`
	ContentType   string    `json:"content_type,omitempty"`
	SHA256        string    `json:"sha256,omitempty"` // hex, as declared by the client
	Backend       string    `json:"backend"`
	Bucket        string    `json:"bucket"`
	StoreKey      string    `json:"-"` // full key in the bucket (prefix applied)
	StoreUploadID string    `json:"-"` // the store's own multipart/session id
	State         string    `json:"state"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Upload states.
const (
	UploadActive    = "active"
	UploadCompleted = "completed"
	UploadAborted   = "aborted"
)
