package sqlite

import (
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}
