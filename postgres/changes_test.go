package postgres

import (
	"testing"

	"github.com/signetdev/signet/storetest"
)

// TestChangeSeq runs the shared change-sequence checks (storetest).
func TestChangeSeq(t *testing.T) {
	db := MustOpenDB(t)
	storetest.RunChangeSeq(t, db)
}
