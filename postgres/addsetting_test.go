package postgres

import (
	"fmt"
	"sync"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestAddSettingReplicas: replicas (separate pools, so separate
// transactions, not one group commit) adding the same setting at the same
// moment: exactly one succeeds each time and its value is the one stored.
// serve's secret key check depends on it when replicas start together on
// a database that has no check value yet.
func TestAddSettingReplicas(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	replicas := []*DB{mustOpen(t, u), mustOpen(t, u), mustOpen(t, u)}
	for round := range 20 {
		name := fmt.Sprintf("race.%d", round)
		errs := make([]error, len(replicas))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range replicas {
			wg.Go(func() {
				<-start
				errs[i] = db.Update(t.Context(), func(tx signet.Tx) error {
					return tx.AddSetting(name, fmt.Sprint(i))
				})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch signet.ErrorCode(err) {
			case "":
				if winner >= 0 {
					t.Fatalf("round %d: replicas %d and %d both added %s", round, winner, i, name)
				}
				winner = i
			case signet.Conflict:
			default:
				t.Fatalf("round %d: replica %d: %v, want success or Conflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no replica added %s", round, name)
		}
		err := replicas[(winner+1)%len(replicas)].View(t.Context(), func(tx signet.Tx) error {
			got, err := tx.Setting(name)
			if err == nil && got != fmt.Sprint(winner) {
				t.Errorf("round %d: %s = %q, want the winner's %d", round, name, got, winner)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
