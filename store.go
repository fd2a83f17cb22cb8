package signet

import (
	"context"
	"time"
)

// CommitStats counts the work of a store's group commit since it opened:
// Commits transactions carried Updates successful Update calls, so
// Updates/Commits is how many requests shared each commit (and its
// fsync). The SQLite and PostgreSQL stores report it (their Stats method);
// signet serve exports it on /metrics.
type CommitStats struct {
	Commits int64 // transactions the writer committed (or tried to)
	Updates int64 // successful Update calls those transactions carried
}

// Store is the metadata and audit store. Every change runs in a transaction
// together with the audit events that record it, so a decision and its
// record commit together or not at all, durably, before the caller answers.
type Store interface {
	// Update runs fn in a read-write transaction and commits durably when fn
	// returns nil; otherwise it rolls back and returns fn's error. If the
	// commit cannot be made durable it returns an Unavailable error.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Ping reports whether the store can currently serve requests.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is a transaction on the Store. Methods return *Error values with the
// codes listed; any other failure is Internal or Unavailable. Instants are
// stored in UTC to the microsecond; the methods that insert a value set its
// generated fields (IDs, and times left zero) on the caller's struct.
type Tx interface {
	// CreateTeam inserts t, setting its ID, and its CreatedAt when zero.
	// Conflict if the name is taken.
	CreateTeam(t *Team) error
	// Team returns the team by name. NotFound.
	Team(name string) (*Team, error)
	// Teams lists teams ordered by name.
	Teams() ([]*Team, error)
	// UpdateTeam stores t's expiry caps and allowed networks. NotFound.
	UpdateTeam(t *Team) error

	// CreateUser inserts u. Conflict if the name is taken.
	CreateUser(u *User) error
	// User returns the user by name. NotFound.
	User(name string) (*User, error)
	// Users lists users ordered by name.
	Users() ([]*User, error)

	// SetMember adds the user to the team or changes the role. NotFound if
	// either does not exist; Invalid if the role is not valid.
	SetMember(m *Member) error
	// RemoveMember removes a membership. NotFound.
	RemoveMember(team, user string) error
	// Members lists the team's members ordered by user name. NotFound if
	// the team does not exist.
	Members(team string) ([]*Member, error)
	// Memberships lists the teams a user belongs to, ordered by team name.
	// NotFound if the user does not exist.
	Memberships(user string) ([]*Member, error)

	// CreateAPIKey inserts k. NotFound if the user does not exist; Conflict
	// if the id is taken.
	CreateAPIKey(k *APIKey) error
	// APIKey returns the key by id, revoked or not. NotFound.
	APIKey(id string) (*APIKey, error)
	// APIKeys lists keys, of one user when user is not empty, ordered by
	// creation time. NotFound if that user does not exist.
	APIKeys(user string) ([]*APIKey, error)
	// RevokeAPIKey marks a key revoked at t. NotFound; Conflict if already
	// revoked.
	RevokeAPIKey(id string, t time.Time) error
	// TouchAPIKey records that the key was used at t. NotFound.
	TouchAPIKey(id string, t time.Time) error

	// SetConnector creates or replaces the team's connector. NotFound if the
	// team does not exist; Conflict if its bucket and prefix overlap another
	// team's connector on the same backend and endpoint. Overlap errs
	// towards yes: one prefix being a string prefix of the other ("" is the
	// whole bucket), names compared case-insensitively, endpoints without
	// scheme, default port or trailing slash, and an empty endpoint (the
	// backend's default) matching any.
	SetConnector(c *Connector) error
	// Connector returns the team's connector. NotFound.
	Connector(team string) (*Connector, error)
	// Connectors lists all connectors ordered by team.
	Connectors() ([]*Connector, error)

	// PutCredential stores c, replacing a credential with the same Ref.
	// NotFound if the team does not exist.
	PutCredential(c *Credential) error
	// Credential returns the credential by reference. NotFound.
	Credential(ref string) (*Credential, error)

	// CreateUpload inserts u. NotFound if the team does not exist; Conflict
	// if the id is taken.
	CreateUpload(u *Upload) error
	// Upload returns the team's upload by id. NotFound, also when the
	// upload belongs to another team.
	Upload(team, id string) (*Upload, error)
	// ExpiredUploads returns up to limit active uploads whose deadline is
	// at or before now, earliest deadline first.
	ExpiredUploads(now time.Time, limit int) ([]*Upload, error)
	// SetUploadState ends an active upload with state completed or
	// aborted. Conflict when the upload has already ended. NotFound, also when the
	// upload belongs to another team.
	SetUploadState(team, id, state string) error

	// AppendAudit appends events to the audit log, setting their IDs and
	// chain fields: Seq (equal to the ID) continues the log's sequence
	// without gaps, PrevHash is the Hash of the event before, and Hash is
	// computed by auditlog.Chain. Appends are serialised from here to the
	// commit, across processes sharing the store, so the log stays one
	// chain. Invalid if an event lacks an Action or Outcome.
	AppendAudit(events ...*AuditEvent) error
	// Audit returns events matching f in ascending ID order, at most
	// f.Limit of them (100 when 0, never more than 1000).
	Audit(f AuditFilter) ([]*AuditEvent, error)
	// AuditHead returns the Seq and Hash of the last event appended, as the
	// store recorded them when it appended it (zero for an empty log).
	AuditHead() (AuditHead, error)

	// CreateRevocation inserts r, setting CreatedAt when zero. Invalid if
	// its ID or IssuedBefore is missing or IssuedAfter is not before
	// IssuedBefore; Conflict if the ID is taken.
	CreateRevocation(r *Revocation) error
	// Revocations lists the revocations whose IssuedBefore is after since
	// (all of them when since is zero), ordered by CreatedAt, then ID.
	Revocations(since time.Time) ([]*Revocation, error)
	// Grant returns what the audit log recorded of the grant with
	// correlation id id: the team, user, key and time of the first allowed
	// event that carries it. NotFound.
	Grant(id string) (*Grant, error)

	// Setting returns an instance setting. NotFound.
	Setting(name string) (string, error)
	// SetSetting stores an instance setting.
	SetSetting(name, value string) error
	// AddSetting stores an instance setting unless one of that name
	// exists: Conflict then, and the stored value stays. Of several
	// replicas adding the same setting at once, exactly one succeeds.
	AddSetting(name, value string) error
}
