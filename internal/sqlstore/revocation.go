package sqlstore

import (
	"time"

	"github.com/signetdev/signet"
)

// CheckRevocation returns an Invalid error, with op, unless r can be
// stored: it has an ID and an IssuedBefore, and IssuedAfter, when set, is
// before IssuedBefore at the stored precision (the microsecond).
func CheckRevocation(op string, r *signet.Revocation) error {
	var msg string
	switch {
	case r == nil || r.ID == "":
		msg = "revocation id is required"
	case r.IssuedBefore.IsZero():
		msg = "issued_before is required"
	case !r.IssuedAfter.IsZero() && !r.IssuedAfter.Truncate(time.Microsecond).Before(r.IssuedBefore.Truncate(time.Microsecond)):
		msg = "issued_after must be earlier than issued_before"
	default:
		return nil
	}
	return signet.E(op, signet.Invalid, msg, nil)
}
