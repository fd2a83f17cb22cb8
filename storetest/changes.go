package storetest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// ChangeSeqer is a Store with a change sequence, which servers read to
// know whether their cache is current.
type ChangeSeqer interface {
	signet.Store
	ChangeSeq(ctx context.Context) (int64, error)
}

// RunChangeSeq runs each kind of change through s, a fresh store, and
// checks that the change sequence moves with every change to what
// authorises a request, and with nothing else (a key's last use, audit
// appends, settings, reads, rolled-back changes).
func RunChangeSeq(t *testing.T, s ChangeSeqer) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	steps := []struct {
		name  string
		moves bool
		fn    func(signet.Tx) error
	}{
		{"create team", true, func(tx signet.Tx) error { return tx.CreateTeam(&signet.Team{Name: "cs"}) }},
		{"create user", true, func(tx signet.Tx) error { return tx.CreateUser(&signet.User{Name: "cs-user"}) }},
		{"set member", true, func(tx signet.Tx) error {
			return tx.SetMember(&signet.Member{Team: "cs", User: "cs-user", Role: signet.RoleMember})
		}},
		{"create key", true, func(tx signet.Tx) error {
			return tx.CreateAPIKey(&signet.APIKey{ID: "cskey", User: "cs-user", Hash: make([]byte, 32)})
		}},
		{"touch key", false, func(tx signet.Tx) error { return tx.TouchAPIKey("cskey", now) }},
		{"append audit", false, func(tx signet.Tx) error {
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed})
		}},
		{"set setting", false, func(tx signet.Tx) error { return tx.SetSetting("cs", "1") }},
		{"read", false, func(tx signet.Tx) error { _, err := tx.Team("cs"); return err }},
		{"update team", true, func(tx signet.Tx) error {
			return tx.UpdateTeam(&signet.Team{Name: "cs", AllowNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		}},
		{"put credential", true, func(tx signet.Tx) error {
			return tx.PutCredential(&signet.Credential{Ref: "cs-cred", Team: "cs", Sealed: []byte("x")})
		}},
		{"set connector", true, func(tx signet.Tx) error {
			return tx.SetConnector(&signet.Connector{Team: "cs", Backend: "local", Bucket: "cs", CredentialsRef: "cs-cred"})
		}},
		{"create revocation", true, func(tx signet.Tx) error {
			return tx.CreateRevocation(&signet.Revocation{ID: "cs-rev", Team: "cs", IssuedBefore: now})
		}},
		{"revoke key", true, func(tx signet.Tx) error { return tx.RevokeAPIKey("cskey", now) }},
		{"remove member", true, func(tx signet.Tx) error { return tx.RemoveMember("cs", "cs-user") }},
	}
	prev, err := s.ChangeSeq(ctx)
	if err != nil {
		t.Fatalf("ChangeSeq: %v", err)
	}
	for _, st := range steps {
		if err := s.Update(ctx, st.fn); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		seq, err := s.ChangeSeq(ctx)
		if err != nil {
			t.Fatalf("ChangeSeq after %s: %v", st.name, err)
		}
		if moved := seq != prev; moved != st.moves {
			t.Errorf("%s: change sequence %d -> %d; want moved = %v", st.name, prev, seq, st.moves)
		}
		if seq < prev {
			t.Errorf("%s: change sequence went back from %d to %d", st.name, prev, seq)
		}
		prev = seq
	}
	// A change that is rolled back leaves the sequence where it was.
	errRollback := signet.Errorf(signet.Invalid, "rolled back on purpose")
	err = s.Update(ctx, func(tx signet.Tx) error {
		if err := tx.CreateUser(&signet.User{Name: "cs-gone"}); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("rolled-back Update: %v", err)
	}
	if seq, err := s.ChangeSeq(ctx); err != nil || seq != prev {
		t.Errorf("after a rolled-back change: change sequence %d, %v; want %d", seq, err, prev)
	}
}
