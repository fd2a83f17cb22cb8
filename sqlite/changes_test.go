package sqlite_test

import (
	"testing"

	"github.com/signetdev/signet/storetest"
)

// TestChangeSeq runs the shared change-sequence checks (storetest).
func TestChangeSeq(t *testing.T) {
	db, _ := openStore(t)
	storetest.RunChangeSeq(t, db)
}
