// Package storetest is the conformance suite for signet.Store
// implementations. Every store (SQLite, PostgreSQL) runs the same suite,
// which uses nothing but the signet.Store and signet.Tx interfaces:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// Precision is the time precision every store keeps: times read back equal
// the times written, truncated to it.
const Precision = time.Microsecond

// clockSlack bounds the distance between a time a store fills in and the
// test's clock, which may differ for a database server.
const clockSlack = time.Minute

// base is a fixed instant with sub-microsecond digits and a non-UTC zone,
// so that round trips exercise truncation and zone handling.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+5", 5*3600))

type test struct {
	name string
	fn   func(t *testing.T, s signet.Store)
}

// Run runs the conformance suite. open must return a fresh, empty store
// for each call and arrange, with t.Cleanup, for it to be closed.
func Run(t *testing.T, open func(t *testing.T) signet.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"CreateTeam", []test{
			{"OK", testCreateTeamOK},
			{"FillsCreatedAt", testCreateTeamFillsCreatedAt},
			{"ErrConflict", testCreateTeamErrConflict},
		}},
		{"Team", []test{
			{"ErrNotFound", testTeamErrNotFound},
		}},
		{"Teams", []test{
			{"Order", testTeamsOrder},
			{"Empty", testTeamsEmpty},
		}},
		{"UpdateTeam", []test{
			{"OK", testUpdateTeamOK},
			{"ErrNotFound", testUpdateTeamErrNotFound},
		}},
		{"CreateUser", []test{
			{"OK", testCreateUserOK},
			{"ErrConflict", testCreateUserErrConflict},
		}},
		{"User", []test{
			{"ErrNotFound", testUserErrNotFound},
		}},
		{"Users", []test{
			{"Order", testUsersOrder},
		}},
		{"SetMember", []test{
			{"OK", testSetMemberOK},
			{"ChangeRole", testSetMemberChangeRole},
			{"ErrNotFound", testSetMemberErrNotFound},
			{"ErrInvalid", testSetMemberErrInvalid},
		}},
		{"RemoveMember", []test{
			{"OK", testRemoveMemberOK},
			{"ErrNotFound", testRemoveMemberErrNotFound},
		}},
		{"Members", []test{
			{"Order", testMembersOrder},
			{"ErrNotFound", testMembersErrNotFound},
		}},
		{"Memberships", []test{
			{"Order", testMembershipsOrder},
			{"Empty", testMembershipsEmpty},
			{"ErrNotFound", testMembershipsErrNotFound},
		}},
		{"CreateAPIKey", []test{
			{"OK", testCreateAPIKeyOK},
			{"Times", testCreateAPIKeyTimes},
			{"ErrConflict", testCreateAPIKeyErrConflict},
			{"ErrNotFound", testCreateAPIKeyErrNotFound},
		}},
		{"APIKey", []test{
			{"ErrNotFound", testAPIKeyErrNotFound},
		}},
		{"APIKeys", []test{
			{"Order", testAPIKeysOrder},
			{"ErrNotFound", testAPIKeysErrNotFound},
		}},
		{"RevokeAPIKey", []test{
			{"OK", testRevokeAPIKeyOK},
			{"ErrConflict", testRevokeAPIKeyErrConflict},
			{"ErrNotFound", testRevokeAPIKeyErrNotFound},
		}},
		{"TouchAPIKey", []test{
			{"OK", testTouchAPIKeyOK},
			{"ErrNotFound", testTouchAPIKeyErrNotFound},
		}},
		{"SetConnector", []test{
			{"OK", testSetConnectorOK},
			{"Replace", testSetConnectorReplace},
			{"Disjoint", testSetConnectorDisjoint},
			{"ErrConflict", testSetConnectorErrConflict},
			{"ErrNotFound", testSetConnectorErrNotFound},
		}},
		{"Connector", []test{
			{"ErrNotFound", testConnectorErrNotFound},
		}},
		{"Connectors", []test{
			{"Order", testConnectorsOrder},
		}},
		{"CreateUpload", []test{
			{"OK", testCreateUploadOK},
			{"ErrConflict", testCreateUploadErrConflict},
			{"ErrNotFound", testCreateUploadErrNotFound},
		}},
		{"Upload", []test{
			{"ErrNotFound", testUploadErrNotFound},
			{"OtherTeam", testUploadOtherTeam},
		}},
		{"ExpiredUploads", []test{
			{"OK", testExpiredUploadsOK},
		}},
		{"SetUploadState", []test{
			{"OK", testSetUploadStateOK},
			{"ErrConflict", testSetUploadStateErrConflict},
			{"ErrNotFound", testSetUploadStateErrNotFound},
		}},
		{"AppendAudit", []test{
			{"OK", testAppendAuditOK},
			{"FillsTime", testAppendAuditFillsTime},
			{"Empty", testAppendAuditEmpty},
			{"ErrInvalid", testAppendAuditErrInvalid},
			{"10k", testAppendAudit10k},
		}},
		{"Audit", []test{
			{"Paging", testAuditPaging},
			{"DefaultLimit", testAuditDefaultLimit},
			{"Filters", testAuditFilters},
			{"FilterFields", testAuditFilterFields},
			{"FilterInvalid", testAuditFilterInvalid},
			{"FilterSinceLarge", testAuditFilterSinceLarge},
		}},
		{"AuditChain", chainTests},
		{"Usage", usageTests},
		{"Revocations", revocationTests},
		{"Credential", []test{
			{"OK", testCredentialOK},
			{"Replace", testCredentialReplace},
			{"ErrNotFound", testCredentialErrNotFound},
		}},
		{"Setting", []test{
			{"OK", testSettingOK},
			{"ErrNotFound", testSettingErrNotFound},
			{"AddOK", testAddSettingOK},
			{"AddErrConflict", testAddSettingErrConflict},
			{"AddConcurrent", testAddSettingConcurrent},
		}},
		{"Update", []test{
			{"Rollback", testUpdateRollback},
			{"ErrorPassthrough", testUpdateErrorPassthrough},
			{"Concurrent", testUpdateConcurrent},
		}},
		{"View", []test{
			{"NoWrites", testViewNoWrites},
		}},
		{"Ping", []test{
			{"OK", testPingOK},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.fn(t, open(t))
				})
			}
		})
	}
}

// Helpers.

func update(t *testing.T, s signet.Store, fn func(signet.Tx) error) error {
	t.Helper()
	return s.Update(t.Context(), fn)
}

func view(t *testing.T, s signet.Store, fn func(signet.Tx) error) error {
	t.Helper()
	return s.View(t.Context(), fn)
}

// mustUpdate runs a setup transaction.
func mustUpdate(t *testing.T, s signet.Store, fn func(signet.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("setup: %v", err)
	}
}

// mustView runs a read whose failure makes the rest of the test moot.
func mustView(t *testing.T, s signet.Store, fn func(signet.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func wantCode(t *testing.T, what string, err error, want signet.Code) {
	t.Helper()
	if got := signet.ErrorCode(err); got != want {
		t.Errorf("%s: code %q, want %q (err: %v)", what, got, want, err)
	}
}

func mkTeam(t *testing.T, s signet.Store, names ...string) {
	t.Helper()
	mustUpdate(t, s, func(tx signet.Tx) error {
		for _, n := range names {
			if err := tx.CreateTeam(&signet.Team{Name: n}); err != nil {
				return err
			}
		}
		return nil
	})
}

func mkUser(t *testing.T, s signet.Store, names ...string) {
	t.Helper()
	mustUpdate(t, s, func(tx signet.Tx) error {
		for _, n := range names {
			if err := tx.CreateUser(&signet.User{Name: n}); err != nil {
				return err
			}
		}
		return nil
	})
}

func mkMember(t *testing.T, s signet.Store, team, user string, role signet.Role) {
	t.Helper()
	mustUpdate(t, s, func(tx signet.Tx) error {
		return tx.SetMember(&signet.Member{Team: team, User: user, Role: role})
	})
}

func mkKey(t *testing.T, s signet.Store, k *signet.APIKey) {
	t.Helper()
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateAPIKey(k) })
}

// sameTime reports whether got equals want at the stored precision.
func sameTime(got, want time.Time) bool {
	return got.Equal(want.Truncate(Precision))
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !sameTime(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want.Truncate(Precision))
	}
}

func checkOptTime(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, got, want)
	default:
		checkTime(t, what, *got, *want)
	}
}

// checkRecent checks a time a store filled in from its clock.
func checkRecent(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Add(-clockSlack)) || got.After(after.Add(clockSlack)) {
		t.Errorf("%s = %v, want about %v", what, got, before)
	}
}

func names[T any](xs []T, name func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

func checkNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// Teams.

func testCreateTeamOK(t *testing.T, s signet.Store) {
	in := &signet.Team{Name: "ml", DownloadMaxExpiry: 90 * time.Minute, UploadMaxExpiry: 12 * time.Hour, CreatedAt: base}
	other := &signet.Team{Name: "cv"}
	mustUpdate(t, s, func(tx signet.Tx) error {
		if err := tx.CreateTeam(in); err != nil {
			return err
		}
		return tx.CreateTeam(other)
	})
	if in.ID == 0 || other.ID == 0 || in.ID == other.ID {
		t.Errorf("IDs = %d, %d; want distinct non-zero", in.ID, other.ID)
	}
	checkTime(t, "returned CreatedAt", in.CreatedAt, base)
	var got *signet.Team
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.Team("ml")
		return err
	})
	if got.ID != in.ID || got.Name != "ml" || got.DownloadMaxExpiry != 90*time.Minute || got.UploadMaxExpiry != 12*time.Hour {
		t.Errorf("Team = %+v, want %+v", got, in)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, base)
}

func testCreateTeamFillsCreatedAt(t *testing.T, s signet.Store) {
	before := time.Now()
	in := &signet.Team{Name: "ml"}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateTeam(in) })
	after := time.Now()
	checkRecent(t, "CreatedAt", in.CreatedAt, before, after)
	mustView(t, s, func(tx signet.Tx) error {
		got, err := tx.Team("ml")
		if err != nil {
			return err
		}
		if !got.CreatedAt.Equal(in.CreatedAt) {
			t.Errorf("stored CreatedAt = %v, returned %v", got.CreatedAt, in.CreatedAt)
		}
		if got.DownloadMaxExpiry != 0 || got.UploadMaxExpiry != 0 {
			t.Errorf("caps = %v, %v; want 0, 0", got.DownloadMaxExpiry, got.UploadMaxExpiry)
		}
		return nil
	})
}

func testCreateTeamErrConflict(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	err := update(t, s, func(tx signet.Tx) error { return tx.CreateTeam(&signet.Team{Name: "ml"}) })
	wantCode(t, "CreateTeam twice", err, signet.Conflict)
	mustView(t, s, func(tx signet.Tx) error {
		ts, err := tx.Teams()
		if len(ts) != 1 {
			t.Errorf("Teams = %d teams, want 1", len(ts))
		}
		return err
	})
}

func testTeamErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Team("nope")
		return err
	})
	wantCode(t, "Team(nope)", err, signet.NotFound)
}

func testTeamsOrder(t *testing.T, s signet.Store) {
	mkTeam(t, s, "gamma", "alpha", "delta", "beta")
	mustView(t, s, func(tx signet.Tx) error {
		ts, err := tx.Teams()
		checkNames(t, "Teams", names(ts, func(t *signet.Team) string { return t.Name }), []string{"alpha", "beta", "delta", "gamma"})
		return err
	})
}

func testTeamsEmpty(t *testing.T, s signet.Store) {
	mustView(t, s, func(tx signet.Tx) error {
		ts, err := tx.Teams()
		if len(ts) != 0 {
			t.Errorf("Teams = %v, want none", ts)
		}
		return err
	})
}

func testUpdateTeamOK(t *testing.T, s signet.Store) {
	in := &signet.Team{Name: "ml", DownloadMaxExpiry: time.Hour, CreatedAt: base}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateTeam(in) })
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	upd := &signet.Team{Name: "ml", DownloadMaxExpiry: 10 * time.Minute, UploadMaxExpiry: 2 * time.Hour, AllowNetworks: nets}
	if err := update(t, s, func(tx signet.Tx) error { return tx.UpdateTeam(upd) }); err != nil {
		t.Errorf("UpdateTeam: %v", err)
	}
	mustView(t, s, func(tx signet.Tx) error {
		got, err := tx.Team("ml")
		if err != nil {
			return err
		}
		if got.ID != in.ID || got.DownloadMaxExpiry != 10*time.Minute || got.UploadMaxExpiry != 2*time.Hour {
			t.Errorf("Team = %+v, want ID %d and caps 10m, 2h", got, in.ID)
		}
		if !slices.Equal(got.AllowNetworks, nets) {
			t.Errorf("AllowNetworks = %v, want %v", got.AllowNetworks, nets)
		}
		checkTime(t, "CreatedAt after update", got.CreatedAt, base)
		return nil
	})
}

func testUpdateTeamErrNotFound(t *testing.T, s signet.Store) {
	err := update(t, s, func(tx signet.Tx) error { return tx.UpdateTeam(&signet.Team{Name: "nope", UploadMaxExpiry: time.Hour}) })
	wantCode(t, "UpdateTeam(nope)", err, signet.NotFound)
}

// Users.

func testCreateUserOK(t *testing.T, s signet.Store) {
	in := []*signet.User{
		{Name: "alice", Admin: true, CreatedAt: base},
		{Name: "ci-bot", Service: true, CreatedAt: base.Add(time.Second)},
		{Name: "bob"},
	}
	before := time.Now()
	mustUpdate(t, s, func(tx signet.Tx) error {
		for _, u := range in {
			if err := tx.CreateUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	after := time.Now()
	if in[0].ID == 0 || in[0].ID == in[1].ID || in[1].ID == in[2].ID {
		t.Errorf("IDs = %d, %d, %d; want distinct non-zero", in[0].ID, in[1].ID, in[2].ID)
	}
	checkRecent(t, "filled CreatedAt", in[2].CreatedAt, before, after)
	mustView(t, s, func(tx signet.Tx) error {
		for _, want := range in {
			got, err := tx.User(want.Name)
			if err != nil {
				return err
			}
			if got.ID != want.ID || got.Name != want.Name || got.Service != want.Service || got.Admin != want.Admin {
				t.Errorf("User(%s) = %+v, want %+v", want.Name, got, want)
			}
			checkTime(t, want.Name+" CreatedAt", got.CreatedAt, want.CreatedAt)
		}
		return nil
	})
}

func testCreateUserErrConflict(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	err := update(t, s, func(tx signet.Tx) error { return tx.CreateUser(&signet.User{Name: "alice", Admin: true}) })
	wantCode(t, "CreateUser twice", err, signet.Conflict)
	mustView(t, s, func(tx signet.Tx) error {
		u, err := tx.User("alice")
		if err == nil && u.Admin {
			t.Errorf("conflicting CreateUser changed the user: %+v", u)
		}
		return err
	})
}

func testUserErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.User("nope")
		return err
	})
	wantCode(t, "User(nope)", err, signet.NotFound)
}

func testUsersOrder(t *testing.T, s signet.Store) {
	mkUser(t, s, "carol", "alice", "bob")
	mustView(t, s, func(tx signet.Tx) error {
		us, err := tx.Users()
		checkNames(t, "Users", names(us, func(u *signet.User) string { return u.Name }), []string{"alice", "bob", "carol"})
		return err
	})
}

// Members.

func testSetMemberOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mkUser(t, s, "alice")
	in := &signet.Member{Team: "ml", User: "alice", Role: signet.RoleMember, CreatedAt: base}
	if err := update(t, s, func(tx signet.Tx) error { return tx.SetMember(in) }); err != nil {
		t.Fatalf("SetMember: %v", err)
	}
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Members("ml")
		if err != nil {
			return err
		}
		if len(ms) != 1 || ms[0].Team != "ml" || ms[0].User != "alice" || ms[0].Role != signet.RoleMember {
			t.Errorf("Members = %v, want alice as member", ms)
		} else {
			checkTime(t, "CreatedAt", ms[0].CreatedAt, base)
		}
		return nil
	})
}

func testSetMemberChangeRole(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mkUser(t, s, "alice")
	mkMember(t, s, "ml", "alice", signet.RoleViewer)
	if err := update(t, s, func(tx signet.Tx) error {
		return tx.SetMember(&signet.Member{Team: "ml", User: "alice", Role: signet.RoleAdmin})
	}); err != nil {
		t.Errorf("SetMember again: %v", err)
	}
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Memberships("alice")
		if len(ms) != 1 || ms[0].Role != signet.RoleAdmin {
			t.Errorf("Memberships = %v, want one, as admin", ms)
		}
		return err
	})
}

func testSetMemberErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mkUser(t, s, "alice")
	for _, m := range []signet.Member{
		{Team: "nope", User: "alice", Role: signet.RoleMember},
		{Team: "ml", User: "nope", Role: signet.RoleMember},
	} {
		err := update(t, s, func(tx signet.Tx) error { return tx.SetMember(&m) })
		wantCode(t, fmt.Sprintf("SetMember(%s, %s)", m.Team, m.User), err, signet.NotFound)
	}
}

func testSetMemberErrInvalid(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mkUser(t, s, "alice")
	for _, role := range []signet.Role{"", "owner", "Admin"} {
		err := update(t, s, func(tx signet.Tx) error {
			return tx.SetMember(&signet.Member{Team: "ml", User: "alice", Role: role})
		})
		wantCode(t, fmt.Sprintf("SetMember role %q", role), err, signet.Invalid)
	}
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Members("ml")
		if len(ms) != 0 {
			t.Errorf("Members = %v, want none", ms)
		}
		return err
	})
}

func testRemoveMemberOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mkUser(t, s, "alice")
	mkMember(t, s, "ml", "alice", signet.RoleMember)
	mkMember(t, s, "cv", "alice", signet.RoleMember)
	if err := update(t, s, func(tx signet.Tx) error { return tx.RemoveMember("ml", "alice") }); err != nil {
		t.Errorf("RemoveMember: %v", err)
	}
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Memberships("alice")
		checkNames(t, "Memberships", names(ms, func(m *signet.Member) string { return m.Team }), []string{"cv"})
		return err
	})
}

func testRemoveMemberErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mkUser(t, s, "alice")
	mkMember(t, s, "cv", "alice", signet.RoleMember)
	for _, c := range [][2]string{{"ml", "alice"}, {"nope", "alice"}, {"cv", "nope"}} {
		err := update(t, s, func(tx signet.Tx) error { return tx.RemoveMember(c[0], c[1]) })
		wantCode(t, fmt.Sprintf("RemoveMember(%s, %s)", c[0], c[1]), err, signet.NotFound)
	}
}

func testMembersOrder(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mkUser(t, s, "carol", "alice", "bob", "dave")
	mkMember(t, s, "ml", "carol", signet.RoleViewer)
	mkMember(t, s, "ml", "alice", signet.RoleAdmin)
	mkMember(t, s, "cv", "dave", signet.RoleAdmin)
	mkMember(t, s, "ml", "bob", signet.RoleMember)
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Members("ml")
		checkNames(t, "Members", names(ms, func(m *signet.Member) string { return m.User + ":" + string(m.Role) }),
			[]string{"alice:admin", "bob:member", "carol:viewer"})
		return err
	})
}

func testMembersErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Members("nope")
		return err
	})
	wantCode(t, "Members(nope)", err, signet.NotFound)
}

func testMembershipsOrder(t *testing.T, s signet.Store) {
	mkTeam(t, s, "gamma", "alpha", "beta")
	mkUser(t, s, "alice", "bob")
	mkMember(t, s, "gamma", "alice", signet.RoleViewer)
	mkMember(t, s, "alpha", "alice", signet.RoleAdmin)
	mkMember(t, s, "beta", "bob", signet.RoleAdmin)
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Memberships("alice")
		checkNames(t, "Memberships", names(ms, func(m *signet.Member) string { return m.Team + ":" + m.User + ":" + string(m.Role) }),
			[]string{"alpha:alice:admin", "gamma:alice:viewer"})
		return err
	})
}

func testMembershipsEmpty(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	mustView(t, s, func(tx signet.Tx) error {
		ms, err := tx.Memberships("alice")
		if len(ms) != 0 {
			t.Errorf("Memberships = %v, want none", ms)
		}
		return err
	})
}

func testMembershipsErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Memberships("nope")
		return err
	})
	wantCode(t, "Memberships(nope)", err, signet.NotFound)
}

// API keys.

func checkKey(t *testing.T, got, want *signet.APIKey) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || string(got.Hash) != string(want.Hash) {
		t.Errorf("APIKey = %+v, want %+v", got, want)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkOptTime(t, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkOptTime(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
}

func readKey(t *testing.T, s signet.Store, id string) *signet.APIKey {
	t.Helper()
	var k *signet.APIKey
	mustView(t, s, func(tx signet.Tx) (err error) {
		k, err = tx.APIKey(id)
		return err
	})
	return k
}

func testCreateAPIKeyOK(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	in := &signet.APIKey{ID: "abcdefghijklmnop", User: "alice", Hash: []byte{0, 1, 2, 0xfe, 0xff, 0}, CreatedAt: base}
	if err := update(t, s, func(tx signet.Tx) error { return tx.CreateAPIKey(in) }); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	got := readKey(t, s, in.ID)
	checkKey(t, got, in)
	if got.LastUsedAt != nil || got.RevokedAt != nil {
		t.Errorf("new key: LastUsedAt %v, RevokedAt %v; want nil, nil", got.LastUsedAt, got.RevokedAt)
	}
}

func testCreateAPIKeyTimes(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	used, revoked := base.Add(time.Hour), base.Add(2*time.Hour)
	in := &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h"), CreatedAt: base, LastUsedAt: &used, RevokedAt: &revoked}
	mkKey(t, s, in)
	checkKey(t, readKey(t, s, "k1"), &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h"), CreatedAt: base, LastUsedAt: &used, RevokedAt: &revoked})

	before := time.Now()
	filled := &signet.APIKey{ID: "k2", User: "alice", Hash: []byte("h2")}
	mkKey(t, s, filled)
	checkRecent(t, "filled CreatedAt", filled.CreatedAt, before, time.Now())
	checkTime(t, "stored CreatedAt", readKey(t, s, "k2").CreatedAt, filled.CreatedAt)
}

func testCreateAPIKeyErrConflict(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice", "bob")
	mkKey(t, s, &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h")})
	err := update(t, s, func(tx signet.Tx) error {
		return tx.CreateAPIKey(&signet.APIKey{ID: "k1", User: "bob", Hash: []byte("other")})
	})
	wantCode(t, "CreateAPIKey twice", err, signet.Conflict)
	if k := readKey(t, s, "k1"); k.User != "alice" || string(k.Hash) != "h" {
		t.Errorf("conflicting CreateAPIKey changed the key: %+v", k)
	}
}

func testCreateAPIKeyErrNotFound(t *testing.T, s signet.Store) {
	err := update(t, s, func(tx signet.Tx) error {
		return tx.CreateAPIKey(&signet.APIKey{ID: "k1", User: "nope", Hash: []byte("h")})
	})
	wantCode(t, "CreateAPIKey for missing user", err, signet.NotFound)
}

func testAPIKeyErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.APIKey("nope")
		return err
	})
	wantCode(t, "APIKey(nope)", err, signet.NotFound)
}

func testAPIKeysOrder(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice", "bob")
	// Inserted out of creation order.
	for _, k := range []*signet.APIKey{
		{ID: "k3", User: "alice", Hash: []byte("h"), CreatedAt: base.Add(3 * time.Second)},
		{ID: "k1", User: "alice", Hash: []byte("h"), CreatedAt: base.Add(1 * time.Second)},
		{ID: "k2", User: "bob", Hash: []byte("h"), CreatedAt: base.Add(2 * time.Second)},
		{ID: "k4", User: "bob", Hash: []byte("h"), CreatedAt: base.Add(4 * time.Second)},
	} {
		mkKey(t, s, k)
	}
	id := func(k *signet.APIKey) string { return k.ID }
	mustView(t, s, func(tx signet.Tx) error {
		all, err := tx.APIKeys("")
		if err != nil {
			return err
		}
		checkNames(t, `APIKeys("")`, names(all, id), []string{"k1", "k2", "k3", "k4"})
		alice, err := tx.APIKeys("alice")
		checkNames(t, "APIKeys(alice)", names(alice, id), []string{"k1", "k3"})
		return err
	})
}

func testAPIKeysErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.APIKeys("nope")
		return err
	})
	wantCode(t, "APIKeys(nope)", err, signet.NotFound)
}

func testRevokeAPIKeyOK(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	mkKey(t, s, &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h"), CreatedAt: base})
	mkKey(t, s, &signet.APIKey{ID: "k2", User: "alice", Hash: []byte("h"), CreatedAt: base})
	at := base.Add(time.Hour)
	if err := update(t, s, func(tx signet.Tx) error { return tx.RevokeAPIKey("k1", at) }); err != nil {
		t.Errorf("RevokeAPIKey: %v", err)
	}
	checkOptTime(t, "k1 RevokedAt", readKey(t, s, "k1").RevokedAt, &at)
	checkOptTime(t, "k2 RevokedAt", readKey(t, s, "k2").RevokedAt, nil)
}

func testRevokeAPIKeyErrConflict(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	mkKey(t, s, &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h")})
	first := base.Add(time.Hour)
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.RevokeAPIKey("k1", first) })
	err := update(t, s, func(tx signet.Tx) error { return tx.RevokeAPIKey("k1", base.Add(2*time.Hour)) })
	wantCode(t, "RevokeAPIKey twice", err, signet.Conflict)
	checkOptTime(t, "RevokedAt after second revoke", readKey(t, s, "k1").RevokedAt, &first)
}

func testRevokeAPIKeyErrNotFound(t *testing.T, s signet.Store) {
	err := update(t, s, func(tx signet.Tx) error { return tx.RevokeAPIKey("nope", base) })
	wantCode(t, "RevokeAPIKey(nope)", err, signet.NotFound)
}

func testTouchAPIKeyOK(t *testing.T, s signet.Store) {
	mkUser(t, s, "alice")
	mkKey(t, s, &signet.APIKey{ID: "k1", User: "alice", Hash: []byte("h"), CreatedAt: base})
	at := base.Add(time.Minute)
	if err := update(t, s, func(tx signet.Tx) error { return tx.TouchAPIKey("k1", at) }); err != nil {
		t.Errorf("TouchAPIKey: %v", err)
	}
	k := readKey(t, s, "k1")
	checkOptTime(t, "LastUsedAt", k.LastUsedAt, &at)
	checkOptTime(t, "RevokedAt", k.RevokedAt, nil)
	later := at.Add(time.Hour)
	if err := update(t, s, func(tx signet.Tx) error { return tx.TouchAPIKey("k1", later) }); err != nil {
		t.Errorf("TouchAPIKey again: %v", err)
	}
	checkOptTime(t, "LastUsedAt after second touch", readKey(t, s, "k1").LastUsedAt, &later)
}

func testTouchAPIKeyErrNotFound(t *testing.T, s signet.Store) {
	err := update(t, s, func(tx signet.Tx) error { return tx.TouchAPIKey("nope", base) })
	wantCode(t, "TouchAPIKey(nope)", err, signet.NotFound)
}

// Connectors.

func checkConnector(t *testing.T, got, want *signet.Connector) {
	t.Helper()
	if got.Team != want.Team || got.Backend != want.Backend || got.Bucket != want.Bucket ||
		got.Prefix != want.Prefix || got.Region != want.Region || got.Endpoint != want.Endpoint ||
		got.CredentialsRef != want.CredentialsRef || !maps.Equal(got.Options, want.Options) {
		t.Errorf("Connector = %+v, want %+v", got, want)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func readConnector(t *testing.T, s signet.Store, team string) *signet.Connector {
	t.Helper()
	var c *signet.Connector
	mustView(t, s, func(tx signet.Tx) (err error) {
		c, err = tx.Connector(team)
		return err
	})
	return c
}

func setConnector(t *testing.T, s signet.Store, c *signet.Connector) error {
	t.Helper()
	return update(t, s, func(tx signet.Tx) error { return tx.SetConnector(c) })
}

func testSetConnectorOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	in := &signet.Connector{
		Team: "ml", Backend: signet.BackendS3, Bucket: "data", Prefix: "teams/ml/", Region: "eu-west-1",
		Endpoint: "http://127.0.0.1:9000", CredentialsRef: "minio-ml",
		Options:   map[string]string{"path_style": "true", "kms_key": "arn:aws:kms:x", "empty": "", "ünï": "\"quoted\"\n"},
		UpdatedAt: base,
	}
	if err := setConnector(t, s, in); err != nil {
		t.Fatalf("SetConnector: %v", err)
	}
	checkConnector(t, readConnector(t, s, "ml"), in)

	before := time.Now()
	bare := &signet.Connector{Team: "ml", Backend: signet.BackendLocal, Bucket: "ml"}
	if err := setConnector(t, s, bare); err != nil {
		t.Fatalf("SetConnector without options: %v", err)
	}
	checkRecent(t, "filled UpdatedAt", bare.UpdatedAt, before, time.Now())
	got := readConnector(t, s, "ml")
	checkConnector(t, got, bare)
	if len(got.Options) != 0 {
		t.Errorf("Options = %v, want empty", got.Options)
	}
}

func testSetConnectorReplace(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	first := &signet.Connector{Team: "ml", Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/",
		Options: map[string]string{"a": "1"}, UpdatedAt: base}
	if err := setConnector(t, s, first); err != nil {
		t.Fatalf("SetConnector: %v", err)
	}
	// The same team may re-point to an overlapping location of its own.
	second := &signet.Connector{Team: "ml", Backend: signet.BackendS3, Bucket: "data", Prefix: "",
		Region: "us-east-1", Options: map[string]string{"b": "2"}, UpdatedAt: base.Add(time.Hour)}
	if err := setConnector(t, s, second); err != nil {
		t.Errorf("SetConnector replacing own connector: %v", err)
	}
	checkConnector(t, readConnector(t, s, "ml"), second)
	mustView(t, s, func(tx signet.Tx) error {
		cs, err := tx.Connectors()
		if len(cs) != 1 {
			t.Errorf("Connectors = %d, want 1", len(cs))
		}
		return err
	})
}

// existing is the connector the overlap tests set for team "owner".
var existing = signet.Connector{Team: "owner", Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", Endpoint: "https://s3.example.com"}

func testSetConnectorDisjoint(t *testing.T, s signet.Store) {
	mkTeam(t, s, "owner")
	own := existing
	if err := setConnector(t, s, &own); err != nil {
		t.Fatalf("setup: %v", err)
	}
	for i, c := range []signet.Connector{
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "cv/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "m/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "other", Prefix: "ml/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "whole", Prefix: "", Endpoint: existing.Endpoint},
		{Backend: signet.BackendGCS, Bucket: "data", Prefix: "ml/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", Endpoint: "https://minio.example.com"},
	} {
		team := fmt.Sprintf("t%d", i)
		mkTeam(t, s, team)
		c.Team = team
		if err := setConnector(t, s, &c); err != nil {
			t.Errorf("SetConnector(%+v) beside %+v: %v", c, existing, err)
		}
	}
}

func testSetConnectorErrConflict(t *testing.T, s signet.Store) {
	mkTeam(t, s, "owner", "intruder")
	own := existing
	if err := setConnector(t, s, &own); err != nil {
		t.Fatalf("setup: %v", err)
	}
	for _, c := range []signet.Connector{
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/sub/", Endpoint: existing.Endpoint},
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "", Endpoint: existing.Endpoint},
		// Spellings of the same place.
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", Endpoint: "HTTPS://S3.Example.com/"},
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/", Endpoint: "https://s3.example.com:443"},
		{Backend: signet.BackendS3, Bucket: "Data", Prefix: "ML/", Endpoint: existing.Endpoint},
		// An empty endpoint is the backend's default, which may be the same.
		{Backend: signet.BackendS3, Bucket: "data", Prefix: "ml/x/"},
	} {
		c.Team = "intruder"
		err := setConnector(t, s, &c)
		wantCode(t, fmt.Sprintf("SetConnector(%+v) over %+v", c, existing), err, signet.Conflict)
		// The refusal must not tell a team admin who holds the location.
		if msg := signet.ErrorMessage(err); strings.Contains(msg, existing.Team) {
			t.Errorf("conflict message %q names the other team", msg)
		}
	}
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Connector("intruder")
		return err
	})
	wantCode(t, "intruder's connector after conflicts", err, signet.NotFound)

	// The whole bucket held by one team blocks every prefix in it.
	mkTeam(t, s, "whole", "late")
	whole := &signet.Connector{Team: "whole", Backend: signet.BackendLocal, Bucket: "shared"}
	if err := setConnector(t, s, whole); err != nil {
		t.Fatalf("setup: %v", err)
	}
	err = setConnector(t, s, &signet.Connector{Team: "late", Backend: signet.BackendLocal, Bucket: "shared", Prefix: "late/"})
	wantCode(t, "SetConnector inside another team's whole bucket", err, signet.Conflict)
}

func testSetConnectorErrNotFound(t *testing.T, s signet.Store) {
	err := setConnector(t, s, &signet.Connector{Team: "nope", Backend: signet.BackendLocal, Bucket: "nope"})
	wantCode(t, "SetConnector for missing team", err, signet.NotFound)
}

func testConnectorErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	for _, team := range []string{"ml", "nope"} {
		err := view(t, s, func(tx signet.Tx) error {
			_, err := tx.Connector(team)
			return err
		})
		wantCode(t, "Connector("+team+")", err, signet.NotFound)
	}
}

func testConnectorsOrder(t *testing.T, s signet.Store) {
	mkTeam(t, s, "gamma", "alpha", "beta")
	for _, team := range []string{"gamma", "alpha", "beta"} {
		if err := setConnector(t, s, &signet.Connector{Team: team, Backend: signet.BackendLocal, Bucket: team}); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	mustView(t, s, func(tx signet.Tx) error {
		cs, err := tx.Connectors()
		checkNames(t, "Connectors", names(cs, func(c *signet.Connector) string { return c.Team + ":" + c.Bucket }),
			[]string{"alpha:alpha", "beta:beta", "gamma:gamma"})
		return err
	})
}

// Uploads.

func newUpload(team, id string) *signet.Upload {
	return &signet.Upload{
		ID: id, Team: team, Key: "datasets/train.tar", Size: 5<<30 + 7, PartSize: 64 << 20, PartCount: 81,
		ContentType: "application/x-tar", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Backend: signet.BackendS3, Bucket: "data", StoreKey: team + "/datasets/train.tar", StoreUploadID: "mpu-" + id,
		State: signet.UploadActive, CreatedBy: "alice", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour),
	}
}

func checkUpload(t *testing.T, got, want *signet.Upload) {
	t.Helper()
	g, w := *got, *want
	g.CreatedAt, g.ExpiresAt, w.CreatedAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("Upload = %+v, want %+v", got, want)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func readUpload(t *testing.T, s signet.Store, team, id string) (*signet.Upload, error) {
	t.Helper()
	var u *signet.Upload
	err := view(t, s, func(tx signet.Tx) (err error) {
		u, err = tx.Upload(team, id)
		return err
	})
	return u, err
}

func testCreateUploadOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	in := newUpload("ml", "u1")
	if err := update(t, s, func(tx signet.Tx) error { return tx.CreateUpload(in) }); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	got, err := readUpload(t, s, "ml", "u1")
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	checkUpload(t, got, newUpload("ml", "u1"))
}

func testCreateUploadErrConflict(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload("ml", "u1")) })
	for _, team := range []string{"ml", "cv"} {
		err := update(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload(team, "u1")) })
		wantCode(t, "CreateUpload with a taken id in team "+team, err, signet.Conflict)
	}
	if _, err := readUpload(t, s, "ml", "u1"); err != nil {
		t.Errorf("original upload: %v", err)
	}
}

func testCreateUploadErrNotFound(t *testing.T, s signet.Store) {
	err := update(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload("nope", "u1")) })
	wantCode(t, "CreateUpload for missing team", err, signet.NotFound)
}

func testExpiredUploadsOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	now := base.Truncate(Precision)
	for i, d := range []time.Duration{-2 * time.Hour, -time.Hour, 0, time.Second, time.Hour} {
		u := newUpload([]string{"ml", "cv"}[i%2], fmt.Sprintf("u%d", i))
		u.ExpiresAt = now.Add(d)
		mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateUpload(u) })
	}
	// A finished session is not collected even when past its deadline.
	done := newUpload("ml", "done")
	done.ExpiresAt = now.Add(-3 * time.Hour)
	mustUpdate(t, s, func(tx signet.Tx) error {
		if err := tx.CreateUpload(done); err != nil {
			return err
		}
		return tx.SetUploadState("ml", "done", signet.UploadCompleted)
	})
	var got []*signet.Upload
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.ExpiredUploads(now, 10)
		return err
	})
	var ids []string
	for _, u := range got {
		ids = append(ids, u.ID)
	}
	if want := []string{"u0", "u1", "u2"}; !slices.Equal(ids, want) {
		t.Errorf("ExpiredUploads = %v, want %v (earliest deadline first, completed excluded)", ids, want)
	}
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.ExpiredUploads(now, 2)
		return err
	})
	if len(got) != 2 {
		t.Errorf("ExpiredUploads with limit 2 returned %d", len(got))
	}
}

func testUploadErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	_, err := readUpload(t, s, "ml", "nope")
	wantCode(t, "Upload(ml, nope)", err, signet.NotFound)
	_, err = readUpload(t, s, "nope", "nope")
	wantCode(t, "Upload(nope, nope)", err, signet.NotFound)
}

func testUploadOtherTeam(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload("ml", "u1")) })
	u, err := readUpload(t, s, "cv", "u1")
	wantCode(t, "Upload(cv, id of ml's upload)", err, signet.NotFound)
	if u != nil {
		t.Errorf("Upload(cv, id of ml's upload) = %+v, want nil", u)
	}
}

func testSetUploadStateOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mustUpdate(t, s, func(tx signet.Tx) error {
		for _, id := range []string{"u1", "u2", "u3"} {
			if err := tx.CreateUpload(newUpload("ml", id)); err != nil {
				return err
			}
		}
		return nil
	})
	for id, state := range map[string]string{"u1": signet.UploadCompleted, "u2": signet.UploadAborted} {
		if err := update(t, s, func(tx signet.Tx) error { return tx.SetUploadState("ml", id, state) }); err != nil {
			t.Errorf("SetUploadState(%s, %s): %v", id, state, err)
		}
		if u, err := readUpload(t, s, "ml", id); err != nil || u.State != state {
			t.Errorf("after SetUploadState(%s, %s): %+v, %v", id, state, u, err)
		}
	}
	if u, err := readUpload(t, s, "ml", "u3"); err != nil || u.State != signet.UploadActive {
		t.Errorf("other upload: %+v, %v; want active", u, err)
	}
}

// A session ends once: completing or aborting one that already ended is a
// Conflict, so two replicas (or a sweeper and a client) cannot both act.
func testSetUploadStateErrConflict(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload("ml", "u1")) })
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.SetUploadState("ml", "u1", signet.UploadCompleted) })
	for _, state := range []string{signet.UploadAborted, signet.UploadCompleted} {
		err := update(t, s, func(tx signet.Tx) error { return tx.SetUploadState("ml", "u1", state) })
		wantCode(t, "SetUploadState("+state+") of a completed upload", err, signet.Conflict)
	}
	if u, err := readUpload(t, s, "ml", "u1"); err != nil || u.State != signet.UploadCompleted {
		t.Errorf("upload after refused changes: %+v, %v; want completed", u, err)
	}
}

func testSetUploadStateErrNotFound(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml", "cv")
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.CreateUpload(newUpload("ml", "u1")) })
	for _, c := range [][2]string{{"ml", "nope"}, {"cv", "u1"}, {"nope", "u1"}} {
		err := update(t, s, func(tx signet.Tx) error { return tx.SetUploadState(c[0], c[1], signet.UploadAborted) })
		wantCode(t, fmt.Sprintf("SetUploadState(%s, %s)", c[0], c[1]), err, signet.NotFound)
	}
	if u, err := readUpload(t, s, "ml", "u1"); err != nil || u.State != signet.UploadActive {
		t.Errorf("ml's upload after other teams' attempts: %+v, %v; want active", u, err)
	}
}

// Audit.

func fullEvent(i int) *signet.AuditEvent {
	return &signet.AuditEvent{
		Time:      base.Add(time.Duration(i) * time.Millisecond),
		RequestID: fmt.Sprintf("req-%d", i),
		ActorUser: "alice",
		ActorKey:  "abcdefghijklmnop",
		Team:      "ml",
		Action:    signet.ActionPresignUpload,
		Outcome:   signet.OutcomeDenied,
		Code:      signet.InvalidKey,
		Reason:    "key \"../x\" is not valid",
		Store:     signet.BackendS3,
		Bucket:    "data",
		ObjectKey: "ml/x",
		UploadID:  "u1",
		GrantID:   fmt.Sprintf("grant-%d", i),
		Method:    "PUT",
		ExpiresAt: base.Add(time.Hour),
		ClientIP:  "2001:db8::1",
		UserAgent: "signet/1.0 (ünïcode)",
		Target:    "bob",
	}
}

func checkEvent(t *testing.T, got, want *signet.AuditEvent) {
	t.Helper()
	g, w := *got, *want
	g.Time, g.ExpiresAt, w.Time, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("event = %+v, want %+v", got, want)
	}
	checkTime(t, "Time", got.Time, want.Time)
	if want.ExpiresAt.IsZero() != got.ExpiresAt.IsZero() || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, want.ExpiresAt)
	}
}

// appendEvents appends evs in one transaction.
func appendEvents(t *testing.T, s signet.Store, evs ...*signet.AuditEvent) {
	t.Helper()
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.AppendAudit(evs...) })
}

func audit(t *testing.T, s signet.Store, f signet.AuditFilter) []*signet.AuditEvent {
	t.Helper()
	var evs []*signet.AuditEvent
	mustView(t, s, func(tx signet.Tx) (err error) {
		evs, err = tx.Audit(f)
		return err
	})
	return evs
}

// auditAll pages through every event matching f, limit at a time.
func auditAll(t *testing.T, s signet.Store, f signet.AuditFilter, limit int) []*signet.AuditEvent {
	t.Helper()
	f.Limit = limit
	var all []*signet.AuditEvent
	for {
		page := audit(t, s, f)
		if len(page) > limit {
			t.Fatalf("page of %d events with Limit %d", len(page), limit)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		f.AfterID = page[len(page)-1].ID
	}
}

func checkAscending(t *testing.T, evs []*signet.AuditEvent) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Errorf("event %d has ID %d after ID %d; want ascending", i, evs[i].ID, evs[i-1].ID)
			return
		}
	}
}

func testAppendAuditOK(t *testing.T, s signet.Store) {
	in := []*signet.AuditEvent{fullEvent(1), fullEvent(2), {Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Time: base}}
	appendEvents(t, s, in...)
	if in[0].ID == 0 || in[1].ID <= in[0].ID || in[2].ID <= in[1].ID {
		t.Errorf("IDs = %d, %d, %d; want ascending, non-zero", in[0].ID, in[1].ID, in[2].ID)
	}
	later := fullEvent(3)
	appendEvents(t, s, later)
	if later.ID <= in[2].ID {
		t.Errorf("ID of a later transaction's event = %d, want > %d", later.ID, in[2].ID)
	}
	got := audit(t, s, signet.AuditFilter{})
	if len(got) != 4 {
		t.Fatalf("Audit = %d events, want 4", len(got))
	}
	for i, want := range append(in, later) {
		checkEvent(t, got[i], want)
	}
}

func testAppendAuditFillsTime(t *testing.T, s signet.Store) {
	ev := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}
	before := time.Now()
	appendEvents(t, s, ev)
	checkRecent(t, "filled Time", ev.Time, before, time.Now())
	got := audit(t, s, signet.AuditFilter{})
	if len(got) != 1 {
		t.Fatalf("Audit = %d events, want 1", len(got))
	}
	checkEvent(t, got[0], ev)
	if !got[0].ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", got[0].ExpiresAt)
	}
}

func testAppendAuditEmpty(t *testing.T, s signet.Store) {
	if err := update(t, s, func(tx signet.Tx) error { return tx.AppendAudit() }); err != nil {
		t.Errorf("AppendAudit(): %v", err)
	}
	if got := audit(t, s, signet.AuditFilter{}); len(got) != 0 {
		t.Errorf("Audit = %v, want none", got)
	}
}

func testAppendAuditErrInvalid(t *testing.T, s signet.Store) {
	for _, ev := range []*signet.AuditEvent{
		{Outcome: signet.OutcomeAllowed},
		{Action: signet.ActionTeamCreate},
	} {
		err := update(t, s, func(tx signet.Tx) error { return tx.AppendAudit(fullEvent(1), ev) })
		wantCode(t, fmt.Sprintf("AppendAudit(%+v)", ev), err, signet.Invalid)
	}
	if got := audit(t, s, signet.AuditFilter{}); len(got) != 0 {
		t.Errorf("Audit = %d events, want none", len(got))
	}
}

func testAppendAudit10k(t *testing.T, s signet.Store) {
	const n = 10000
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		evs[i] = fullEvent(i)
	}
	if err := update(t, s, func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Fatalf("AppendAudit(%d events): %v", n, err)
	}
	if got := audit(t, s, signet.AuditFilter{Limit: 5000}); len(got) != 1000 {
		t.Errorf("Audit with Limit 5000 = %d events, want the maximum, 1000", len(got))
	}
	all := auditAll(t, s, signet.AuditFilter{}, 1000)
	if len(all) != n {
		t.Fatalf("read back %d events, want %d", len(all), n)
	}
	checkAscending(t, all)
	for i, e := range all {
		if e.ID != evs[i].ID || e.RequestID != evs[i].RequestID {
			t.Errorf("event %d = ID %d %s, want ID %d %s", i, e.ID, e.RequestID, evs[i].ID, evs[i].RequestID)
			break
		}
	}
	checkEvent(t, all[n-1], evs[n-1])
}

// mixedEvents appends, over three transactions, 300 events spread over
// teams ml, cv, "" and actors alice, bob.
func mixedEvents(t *testing.T, s signet.Store) []*signet.AuditEvent {
	t.Helper()
	teams := []string{"ml", "cv", "", "ml", "nlp"}
	actors := []string{"alice", "bob", "alice"}
	var all []*signet.AuditEvent
	for batch := range 3 {
		var evs []*signet.AuditEvent
		for i := range 100 {
			k := batch*100 + i
			evs = append(evs, &signet.AuditEvent{
				Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
				Team: teams[k%len(teams)], ActorUser: actors[k%len(actors)], RequestID: fmt.Sprint(k),
			})
		}
		appendEvents(t, s, evs...)
		all = append(all, evs...)
	}
	return all
}

func ids(evs []*signet.AuditEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func filterEvents(evs []*signet.AuditEvent, keep func(*signet.AuditEvent) bool) []*signet.AuditEvent {
	var out []*signet.AuditEvent
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func testAuditPaging(t *testing.T, s signet.Store) {
	all := mixedEvents(t, s)
	for _, limit := range []int{1, 7, 100, 299, 300, 1000} {
		got := auditAll(t, s, signet.AuditFilter{}, limit)
		if !slices.Equal(ids(got), ids(all)) {
			t.Errorf("paging with Limit %d: %d events, want each of %d once, in order", limit, len(got), len(all))
		}
	}
	// A cursor in the middle.
	mid := all[149].ID
	got := audit(t, s, signet.AuditFilter{AfterID: mid, Limit: 1000})
	if !slices.Equal(ids(got), ids(all[150:])) {
		t.Errorf("AfterID %d: %d events, want %d", mid, len(got), len(all[150:]))
	}
	if got := audit(t, s, signet.AuditFilter{AfterID: all[len(all)-1].ID}); len(got) != 0 {
		t.Errorf("AfterID of the last event: %d events, want none", len(got))
	}
}

func testAuditDefaultLimit(t *testing.T, s signet.Store) {
	all := mixedEvents(t, s)
	got := audit(t, s, signet.AuditFilter{})
	if !slices.Equal(ids(got), ids(all[:100])) {
		t.Errorf("Audit with Limit 0 = %d events, want the first 100", len(got))
	}
}

func testAuditFilters(t *testing.T, s signet.Store) {
	all := mixedEvents(t, s)
	for _, c := range []struct {
		name string
		f    signet.AuditFilter
		keep func(*signet.AuditEvent) bool
	}{
		{"Team", signet.AuditFilter{Team: "ml"}, func(e *signet.AuditEvent) bool { return e.Team == "ml" }},
		{"Teams", signet.AuditFilter{Teams: []string{"cv", "nlp"}}, func(e *signet.AuditEvent) bool { return e.Team == "cv" || e.Team == "nlp" }},
		{"TeamsOne", signet.AuditFilter{Teams: []string{"ml"}}, func(e *signet.AuditEvent) bool { return e.Team == "ml" }},
		{"TeamsEmpty", signet.AuditFilter{Teams: []string{}}, func(*signet.AuditEvent) bool { return false }},
		{"TeamsUnknown", signet.AuditFilter{Teams: []string{"nope"}}, func(*signet.AuditEvent) bool { return false }},
		{"TeamAndTeams", signet.AuditFilter{Team: "ml", Teams: []string{"ml", "cv"}}, func(e *signet.AuditEvent) bool { return e.Team == "ml" }},
		{"TeamOutsideTeams", signet.AuditFilter{Team: "nlp", Teams: []string{"ml", "cv"}}, func(*signet.AuditEvent) bool { return false }},
		{"Actor", signet.AuditFilter{Actor: "bob"}, func(e *signet.AuditEvent) bool { return e.ActorUser == "bob" }},
		{"TeamAndActor", signet.AuditFilter{Team: "ml", Actor: "alice"}, func(e *signet.AuditEvent) bool { return e.Team == "ml" && e.ActorUser == "alice" }},
		{"TeamsAndActor", signet.AuditFilter{Teams: []string{"ml", "cv"}, Actor: "bob"}, func(e *signet.AuditEvent) bool {
			return (e.Team == "ml" || e.Team == "cv") && e.ActorUser == "bob"
		}},
	} {
		want := filterEvents(all, c.keep)
		got := auditAll(t, s, c.f, 13)
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("%s: %d events, want %d", c.name, len(got), len(want))
		}
		for _, e := range got {
			if !c.keep(e) {
				t.Errorf("%s: event %+v does not match the filter", c.name, e)
				break
			}
		}
	}
}

// Settings.

func testSettingOK(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.SetSetting("instance.id", "one") })
	mustUpdate(t, s, func(tx signet.Tx) error {
		if err := tx.SetSetting("instance.id", "two"); err != nil {
			return err
		}
		return tx.SetSetting("empty", "")
	})
	mustView(t, s, func(tx signet.Tx) error {
		for name, want := range map[string]string{"instance.id": "two", "empty": ""} {
			got, err := tx.Setting(name)
			if err != nil || got != want {
				t.Errorf("Setting(%s) = %q, %v; want %q", name, got, err, want)
			}
		}
		return nil
	})
}

func testSettingErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Setting("nope")
		return err
	})
	wantCode(t, "Setting(nope)", err, signet.NotFound)
}

func testAddSettingOK(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.AddSetting("key.check", "one") })
	mustView(t, s, func(tx signet.Tx) error {
		if got, err := tx.Setting("key.check"); err != nil || got != "one" {
			t.Errorf("Setting(key.check) = %q, %v; want one", got, err)
		}
		return nil
	})
}

// testAddSettingErrConflict: adding a setting that exists is refused and
// keeps the stored value, in the same transaction and in a later one.
func testAddSettingErrConflict(t *testing.T, s signet.Store) {
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.AddSetting("key.check", "one") })
	err := update(t, s, func(tx signet.Tx) error { return tx.AddSetting("key.check", "two") })
	wantCode(t, "AddSetting(existing)", err, signet.Conflict)
	err = update(t, s, func(tx signet.Tx) error {
		if err := tx.AddSetting("fresh", "a"); err != nil {
			return err
		}
		return tx.AddSetting("fresh", "b")
	})
	wantCode(t, "AddSetting twice in one transaction", err, signet.Conflict)
	mustView(t, s, func(tx signet.Tx) error {
		if got, err := tx.Setting("key.check"); err != nil || got != "one" {
			t.Errorf("Setting(key.check) = %q, %v; want one (kept)", got, err)
		}
		if got, err := tx.Setting("fresh"); signet.ErrorCode(err) != signet.NotFound {
			t.Errorf("Setting(fresh) = %q, %v; want NotFound (its transaction failed)", got, err)
		}
		return nil
	})
}

// testAddSettingConcurrent: of several writers adding the same setting at
// once, exactly one succeeds and its value is the one stored (serve relies
// on it for the secret key's check value when replicas start together).
func testAddSettingConcurrent(t *testing.T, s signet.Store) {
	RunAddSettingRace(t, "race", s, s, s, s, s, s, s, s)
}

// RunAddSettingRace has stores[i] add setting name with value i, all at
// once, and checks that exactly one succeeds, the others get Conflict, and
// the winner's value is stored. Several handles of one database stand for
// replicas, whose transactions are separate; one handle several times
// tests a process's own concurrent Updates.
func RunAddSettingRace(t *testing.T, name string, stores ...signet.Store) {
	t.Helper()
	errs := make([]error, len(stores))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(context.Background(), func(tx signet.Tx) error {
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
				t.Fatalf("%s: added by writers %d and %d", name, winner, i)
			}
			winner = i
		case signet.Conflict:
		default:
			t.Fatalf("%s: writer %d: %v, want success or Conflict", name, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no writer added it", name)
	}
	mustView(t, stores[len(stores)-1], func(tx signet.Tx) error {
		if got, err := tx.Setting(name); err != nil || got != fmt.Sprint(winner) {
			t.Errorf("Setting(%s) = %q, %v; want the winner's %d", name, got, err, winner)
		}
		return nil
	})
}

// Credentials.

func testCredentialOK(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	in := &signet.Credential{Ref: "ml-s3", Team: "ml", Sealed: []byte{1, 2, 3, 0, 255}, CreatedAt: base}
	mustUpdate(t, s, func(tx signet.Tx) error { return tx.PutCredential(in) })
	var got *signet.Credential
	mustView(t, s, func(tx signet.Tx) (err error) {
		got, err = tx.Credential("ml-s3")
		return err
	})
	if got.Ref != in.Ref || got.Team != "ml" || string(got.Sealed) != string(in.Sealed) || !got.CreatedAt.Equal(base.Truncate(Precision)) {
		t.Errorf("Credential = %+v, want %+v", got, in)
	}
}

func testCredentialReplace(t *testing.T, s signet.Store) {
	mkTeam(t, s, "ml")
	for _, v := range [][]byte{{1}, {2, 2}} {
		mustUpdate(t, s, func(tx signet.Tx) error {
			return tx.PutCredential(&signet.Credential{Ref: "r", Team: "ml", Sealed: v})
		})
	}
	mustView(t, s, func(tx signet.Tx) error {
		c, err := tx.Credential("r")
		if err == nil && string(c.Sealed) != string([]byte{2, 2}) {
			t.Errorf("Sealed = %v after replace, want [2 2]", c.Sealed)
		}
		return err
	})
}

func testCredentialErrNotFound(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		_, err := tx.Credential("nope")
		return err
	})
	wantCode(t, "Credential(nope)", err, signet.NotFound)
	err = update(t, s, func(tx signet.Tx) error {
		return tx.PutCredential(&signet.Credential{Ref: "r", Team: "ghost", Sealed: []byte{1}})
	})
	wantCode(t, "PutCredential(team ghost)", err, signet.NotFound)
}

// Transactions.

func testUpdateRollback(t *testing.T, s signet.Store) {
	mkTeam(t, s, "kept")
	appendEvents(t, s, &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "kept"})
	boom := errors.New("boom")
	err := update(t, s, func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "ml"}); err != nil {
			return err
		}
		if err := tx.CreateUser(&signet.User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.SetSetting("x", "y"); err != nil {
			return err
		}
		if err := tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "ml"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update = %v, want fn's error", err)
	}
	mustView(t, s, func(tx signet.Tx) error {
		_, err := tx.Team("ml")
		wantCode(t, "team created in the rolled-back transaction", err, signet.NotFound)
		_, err = tx.User("alice")
		wantCode(t, "user created in the rolled-back transaction", err, signet.NotFound)
		_, err = tx.Setting("x")
		wantCode(t, "setting set in the rolled-back transaction", err, signet.NotFound)
		_, err = tx.Team("kept")
		return err
	})
	got := audit(t, s, signet.AuditFilter{})
	if len(got) != 1 || got[0].Team != "kept" {
		t.Errorf("Audit after rollback = %d events, want only the earlier one", len(got))
	}
}

func testUpdateErrorPassthrough(t *testing.T, s signet.Store) {
	want := signet.Errorf(signet.PermissionDenied, "no")
	err := update(t, s, func(tx signet.Tx) error { return want })
	if err != want {
		t.Errorf("Update = %v, want fn's error unchanged", err)
	}
	err = view(t, s, func(tx signet.Tx) error { return want })
	if err != want {
		t.Errorf("View = %v, want fn's error unchanged", err)
	}
}

func testUpdateConcurrent(t *testing.T, s signet.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("t%d-%d", w, i)
				errs <- s.Update(t.Context(), func(tx signet.Tx) error {
					if _, err := tx.Teams(); err != nil {
						return err
					}
					if err := tx.CreateTeam(&signet.Team{Name: name}); err != nil {
						return err
					}
					return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: name})
				})
				// Reads run alongside the writes.
				errs <- s.View(t.Context(), func(tx signet.Tx) error {
					_, err := tx.Audit(signet.AuditFilter{Team: name})
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent transaction: %v", err)
		}
	}
	mustView(t, s, func(tx signet.Tx) error {
		ts, err := tx.Teams()
		if len(ts) != workers*each {
			t.Errorf("Teams = %d, want %d", len(ts), workers*each)
		}
		return err
	})
	if got := auditAll(t, s, signet.AuditFilter{}, 1000); len(got) != workers*each {
		t.Errorf("Audit = %d events, want %d", len(got), workers*each)
	}
}

func testViewNoWrites(t *testing.T, s signet.Store) {
	err := view(t, s, func(tx signet.Tx) error {
		return tx.CreateTeam(&signet.Team{Name: "ml"})
	})
	if err == nil {
		t.Errorf("CreateTeam in View succeeded")
	}
	err = view(t, s, func(tx signet.Tx) error {
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
	})
	if err == nil {
		t.Errorf("AppendAudit in View succeeded")
	}
	mustView(t, s, func(tx signet.Tx) error {
		_, err := tx.Team("ml")
		wantCode(t, "team created in View", err, signet.NotFound)
		return nil
	})
	if got := audit(t, s, signet.AuditFilter{}); len(got) != 0 {
		t.Errorf("Audit = %d events after a write in View, want none", len(got))
	}
}

func testPingOK(t *testing.T, s signet.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
