package postgres

import (
	"fmt"
	"testing"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storetest"
)

// TestAddSettingReplicas: replicas (separate pools, so separate
// transactions, not one group commit) adding the same setting at the same
// moment: exactly one succeeds each time and its value is the one stored.
// serve's secret key check depends on it when replicas start together on
// a database that has no check value yet.
func TestAddSettingReplicas(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	a, b, c := mustOpen(t, u), mustOpen(t, u), mustOpen(t, u)
	for round := range 20 {
		storetest.RunAddSettingRace(t, fmt.Sprintf("race.%d", round), a, b, c)
	}
}
