package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// BenchmarkRevoked measures the local store's per-request revocation
// check: with no revocation (no lookup at all), and with 1000 active
// revocations of other teams, users and keys once the grant is cached
// (index lookups, no scan). Compare the two ns/op: the second should not
// grow with the number of revocations.
func BenchmarkRevoked(b *testing.B) {
	for _, n := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("revocations=%d", n), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.DataDir = b.TempDir()
			db, err := openStore(b.Context(), cfg, time.Now)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			err = db.Update(b.Context(), func(tx signet.Tx) error {
				for i := range n {
					r := &signet.Revocation{ID: fmt.Sprint("r", i), IssuedBefore: now}
					switch i % 3 {
					case 0:
						r.Team = fmt.Sprint("team", i)
					case 1:
						r.User = fmt.Sprint("user", i)
					default:
						r.KeyID = fmt.Sprint("key", i)
					}
					if err := tx.CreateRevocation(r); err != nil {
						return err
					}
				}
				return tx.AppendAudit(&signet.AuditEvent{Time: now.Add(-time.Minute), Team: "ml", ActorUser: "bob", ActorKey: "k1",
					Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, GrantID: "g1"})
			})
			if err != nil {
				b.Fatal(err)
			}
			v := newRevocations(db, time.Now, nil, nil)
			v.maxStale = time.Hour
			if err := v.load(b.Context()); err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			if revoked, err := v.Revoked(ctx, "g1"); revoked || err != nil {
				b.Fatalf("g1: %v %v", revoked, err)
			}
			b.ResetTimer()
			for b.Loop() {
				v.Revoked(ctx, "g1")
			}
		})
	}
}
