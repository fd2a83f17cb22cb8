package fileblob

import (
	"context"
	"net/http"
)

// Problem codes of refusals by Options.Revoked.
const (
	codeRevoked           = "revoked"            // 403: the URL's grant was revoked
	codeRevocationUnknown = "revocation_unknown" // 503: revocation could not be checked; refused
)

// RevokedFunc reports whether the grant with correlation id grant (the
// URL's "grant" parameter, "" when it carries none) has been revoked. An
// error means it cannot tell; the store then refuses the request.
type RevokedFunc func(ctx context.Context, grant string) (bool, error)

// checkRevoked asks s.revoked, when set, about the grant of a URL that
// passed every other check. It fails closed: an error refuses the request.
func (s *Store) checkRevoked(ctx context.Context, c *claims) *problem {
	if s.revoked == nil {
		return nil
	}
	revoked, err := s.revoked(ctx, c.GrantID)
	switch {
	case err != nil:
		return &problem{status: http.StatusServiceUnavailable, code: codeRevocationUnknown,
			detail: "whether the URL was revoked cannot be checked right now; try again", err: err}
	case revoked:
		return newProblem(http.StatusForbidden, codeRevoked, "the URL was revoked")
	}
	return nil
}
