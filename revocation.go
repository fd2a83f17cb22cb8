package signet

import "time"

// Revocation withdraws URLs already issued: every grant it matches stops
// working where the store lets signet enforce that (see docs/security.md,
// "Revocation"). A grant matches when each selector the revocation sets
// matches it: Team, User (the user the grant was issued to), KeyID (the
// API key that asked for it), and its issue time, which must lie in
// [IssuedAfter, IssuedBefore). Unset selectors match anything.
type Revocation struct {
	ID    string `json:"id"`
	Team  string `json:"team,omitempty"`
	User  string `json:"user,omitempty"`
	KeyID string `json:"key,omitempty"`
	// IssuedAfter, when not zero, spares grants issued before it.
	IssuedAfter time.Time `json:"issued_after,omitzero"`
	// IssuedBefore spares grants issued at or after it; it is the
	// revocation's own time unless an earlier one was asked for.
	IssuedBefore time.Time `json:"issued_before"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by,omitempty"`
}

// Validate returns an Invalid *Error unless r can be stored: IssuedBefore
// set, after IssuedAfter when that is set, and IssuedBefore or at least
// one other selector given by the caller (explicit reports whether
// IssuedBefore was asked for rather than defaulted).
func (r *Revocation) Validate(explicit bool) error {
	switch {
	case r.Team == "" && r.User == "" && r.KeyID == "" && r.IssuedAfter.IsZero() && !explicit:
		return Errorf(Invalid, "a revocation needs at least one of team, user, key, issued_after or issued_before")
	case r.IssuedBefore.IsZero():
		return Errorf(Invalid, "issued_before is required")
	case !r.IssuedAfter.IsZero() && !r.IssuedAfter.Before(r.IssuedBefore):
		return Errorf(Invalid, "issued_after must be earlier than issued_before")
	}
	return nil
}

// Matches reports whether r withdraws g.
func (r *Revocation) Matches(g *Grant) bool {
	return (r.Team == "" || r.Team == g.Team) &&
		(r.User == "" || r.User == g.User) &&
		(r.KeyID == "" || r.KeyID == g.KeyID) &&
		(r.IssuedAfter.IsZero() || !g.IssuedAt.Before(r.IssuedAfter)) &&
		g.IssuedAt.Before(r.IssuedBefore)
}

// Grant is what the audit log records of one issued URL (or set of part
// URLs): its correlation id, the team, the user and API key that obtained
// it, and when.
type Grant struct {
	ID       string    `json:"id"`
	Team     string    `json:"team"`
	User     string    `json:"user"`
	KeyID    string    `json:"key"`
	IssuedAt time.Time `json:"issued_at"`
}

// RevocationSet indexes revocations so that a grant is checked in constant
// time when none of them can match it: by team, user and key, with the
// revocations that select by time alone kept apart. It is immutable once
// built and safe for concurrent reads.
type RevocationSet struct {
	byTeam, byUser, byKey map[string][]*Revocation
	timeOnly              []*Revocation
	n                     int
}

// NewRevocationSet indexes rs.
func NewRevocationSet(rs []*Revocation) *RevocationSet {
	s := &RevocationSet{byTeam: map[string][]*Revocation{}, byUser: map[string][]*Revocation{}, byKey: map[string][]*Revocation{}}
	for _, r := range rs {
		s.n++
		// Each revocation is filed under one selector it sets: a grant it
		// matches carries that value, so looking there finds it.
		switch {
		case r.KeyID != "":
			s.byKey[r.KeyID] = append(s.byKey[r.KeyID], r)
		case r.User != "":
			s.byUser[r.User] = append(s.byUser[r.User], r)
		case r.Team != "":
			s.byTeam[r.Team] = append(s.byTeam[r.Team], r)
		default:
			s.timeOnly = append(s.timeOnly, r)
		}
	}
	return s
}

// Len returns the number of revocations in s.
func (s *RevocationSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Match returns a revocation in s that withdraws g, or nil.
func (s *RevocationSet) Match(g *Grant) *Revocation {
	if s.Len() == 0 {
		return nil
	}
	for _, list := range [][]*Revocation{s.byKey[g.KeyID], s.byUser[g.User], s.byTeam[g.Team], s.timeOnly} {
		for _, r := range list {
			if r.Matches(g) {
				return r
			}
		}
	}
	return nil
}
