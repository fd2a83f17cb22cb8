package sqlite

import (
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

// TestAuditFiltersSmallLookup runs the filter cases with the time index
// lookup giving up after 50 entries, so that small logs take both of its
// paths.
func TestAuditFiltersSmallLookup(t *testing.T) {
	defer func(n int) { sinceLookup = n }(sinceLookup)
	sinceLookup = 50
	storetest.RunAuditFilters(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}
