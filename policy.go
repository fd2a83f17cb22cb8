package signet

import "time"

// Actor is an authenticated caller.
type Actor struct {
	User  string
	KeyID string
	Admin bool // instance admin
}

// Permission is what an actor wants to do in a team.
type Permission int

const (
	PermRead   Permission = iota + 1 // see the team, download objects
	PermWrite                        // upload objects
	PermManage                       // manage members and the connector
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	case PermManage:
		return "manage"
	}
	return "unknown"
}

// Allows reports whether role r grants p.
func (r Role) Allows(p Permission) bool {
	switch r {
	case RoleAdmin:
		return p == PermRead || p == PermWrite || p == PermManage
	case RoleMember:
		return p == PermRead || p == PermWrite
	case RoleViewer:
		return p == PermRead
	}
	return false
}

// Authorize decides whether actor, whose role in the team is role (empty if
// not a member), may do p in the team. Instance admins may do everything.
// It returns nil or a PermissionDenied *Error whose message is safe to show.
func Authorize(actor Actor, team string, role Role, p Permission) error {
	if actor.Admin {
		return nil
	}
	if role == "" {
		return Errorf(PermissionDenied, "%s is not a member of team %q", actor.User, team)
	}
	if !role.Allows(p) {
		return Errorf(PermissionDenied, "role %s in team %q does not allow %s", role, team, p)
	}
	return nil
}

// Expiry defaults and limits (R3).
const (
	DefaultDownloadExpiry = time.Hour
	DefaultUploadExpiry   = 24 * time.Hour
	// MaxExpiry is the hard cap of every provider (S3 and GCS allow 7 days).
	MaxExpiry = 7 * 24 * time.Hour
)

// DefaultExpiry returns the instance's default, and highest, cap for
// download (upload=false) or upload URLs.
func DefaultExpiry(upload bool) time.Duration {
	if upload {
		return DefaultUploadExpiry
	}
	return DefaultDownloadExpiry
}

// ExpiryCap returns the team's cap for download (upload=false) or upload
// URLs. A team's caps only lower the defaults (R3): a stored cap above the
// default (set before that rule) counts as the default.
func (t *Team) ExpiryCap(upload bool) time.Duration {
	c := t.DownloadMaxExpiry
	if upload {
		c = t.UploadMaxExpiry
	}
	if def := DefaultExpiry(upload); c <= 0 || c > def {
		return def
	}
	return c
}

// ResolveExpiry returns the expiry instant of a URL issued at now. requested
// is the lifetime the client asked for in whole seconds, or 0 when it did
// not ask (then the cap applies). A request of less than one second or above
// the cap is refused with InvalidExpiry, never clamped. The result is
// truncated to whole seconds, as URLs carry it, so the returned time is the
// URL's real expiry.
func ResolveExpiry(now time.Time, requested int64, limit time.Duration) (time.Time, error) {
	now = now.Truncate(time.Second)
	if requested == 0 {
		return now.Add(limit.Truncate(time.Second)), nil
	}
	if requested < 1 {
		return time.Time{}, Errorf(InvalidExpiry, "expires_in must be at least 1 second")
	}
	if requested > int64(limit/time.Second) {
		return time.Time{}, Errorf(InvalidExpiry, "expires_in %d s exceeds the team's limit of %d s", requested, int64(limit/time.Second))
	}
	return now.Add(time.Duration(requested) * time.Second), nil
}
