package signet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

func TestAuthorize(t *testing.T) {
	user := signet.Actor{User: "u"}
	admin := signet.Actor{User: "root", Admin: true}
	cases := []struct {
		actor signet.Actor
		role  signet.Role
		perm  signet.Permission
		ok    bool
	}{
		{user, signet.RoleViewer, signet.PermRead, true},
		{user, signet.RoleViewer, signet.PermWrite, false},
		{user, signet.RoleViewer, signet.PermManage, false},
		{user, signet.RoleMember, signet.PermRead, true},
		{user, signet.RoleMember, signet.PermWrite, true},
		{user, signet.RoleMember, signet.PermManage, false},
		{user, signet.RoleAdmin, signet.PermRead, true},
		{user, signet.RoleAdmin, signet.PermWrite, true},
		{user, signet.RoleAdmin, signet.PermManage, true},
		{user, "", signet.PermRead, false},
		{user, "owner", signet.PermRead, false}, // unknown roles grant nothing
		{admin, "", signet.PermManage, true},
	}
	for _, c := range cases {
		err := signet.Authorize(c.actor, "ml", c.role, c.perm)
		if (err == nil) != c.ok {
			t.Errorf("Authorize(%v, %q, %v) = %v, want ok=%v", c.actor, c.role, c.perm, err, c.ok)
		}
		if err != nil && signet.ErrorCode(err) != signet.PermissionDenied {
			t.Errorf("code %v, want permission_denied", signet.ErrorCode(err))
		}
	}
}

func TestResolveExpiry(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 700_000_000, time.UTC) // not on a whole second
	whole := now.Truncate(time.Second)
	t.Run("OK", func(t *testing.T) {
		for _, c := range []struct {
			requested int64
			limit     time.Duration
			want      time.Time
		}{
			{0, time.Hour, whole.Add(time.Hour)},
			{1, time.Hour, whole.Add(time.Second)},
			{3600, time.Hour, whole.Add(time.Hour)},
			{600, 24 * time.Hour, whole.Add(10 * time.Minute)},
		} {
			got, err := signet.ResolveExpiry(now, c.requested, c.limit)
			if err != nil || !got.Equal(c.want) {
				t.Errorf("ResolveExpiry(%d, %v) = %v, %v; want %v", c.requested, c.limit, got, err, c.want)
			}
		}
	})
	t.Run("ErrInvalidExpiry", func(t *testing.T) {
		for _, requested := range []int64{-1, 3601, 1 << 62, -1 << 63} {
			_, err := signet.ResolveExpiry(now, requested, time.Hour)
			if signet.ErrorCode(err) != signet.InvalidExpiry {
				t.Errorf("ResolveExpiry(%d) err = %v, want invalid_expiry", requested, err)
			}
		}
	})
	t.Run("TeamCaps", func(t *testing.T) {
		team := &signet.Team{}
		if team.ExpiryCap(false) != time.Hour || team.ExpiryCap(true) != 24*time.Hour {
			t.Errorf("default caps %v %v", team.ExpiryCap(false), team.ExpiryCap(true))
		}
		team.DownloadMaxExpiry = 5 * time.Minute
		if team.ExpiryCap(false) != 5*time.Minute || team.ExpiryCap(true) != 24*time.Hour {
			t.Errorf("lowered caps %v %v", team.ExpiryCap(false), team.ExpiryCap(true))
		}
		// Team caps only lower the defaults: a cap stored above one (before
		// the API refused that) does not raise it.
		team.DownloadMaxExpiry, team.UploadMaxExpiry = 2*time.Hour, 7*24*time.Hour
		if team.ExpiryCap(false) != time.Hour || team.ExpiryCap(true) != 24*time.Hour {
			t.Errorf("raised caps %v %v, want the defaults", team.ExpiryCap(false), team.ExpiryCap(true))
		}
	})
}

func TestAPIKeyToken(t *testing.T) {
	token, id, hash := signet.NewAPIKeyToken()
	if !strings.HasPrefix(token, "sgt_"+id+"_") {
		t.Fatalf("token %q does not carry prefix and id %q", token, id)
	}
	gotID, gotHash, ok := signet.ParseAPIKeyToken(token)
	if !ok || gotID != id {
		t.Fatalf("ParseAPIKeyToken = %q, %v", gotID, ok)
	}
	k := &signet.APIKey{ID: id, Hash: hash}
	if !k.Matches(gotHash) {
		t.Error("token does not match its own hash")
	}
	if strings.Contains(string(hash), token[len(token)-52:]) {
		t.Error("hash holds the secret")
	}
	other, _, _ := signet.NewAPIKeyToken()
	if other == token {
		t.Error("two tokens are equal")
	}
	// Change one character of the secret: same id, different hash.
	b := []byte(token)
	if b[len(b)-1] == 'a' {
		b[len(b)-1] = 'b'
	} else {
		b[len(b)-1] = 'a'
	}
	if _, h, ok := signet.ParseAPIKeyToken(string(b)); !ok || k.Matches(h) {
		t.Error("a changed secret still matches")
	}
	for _, bad := range []string{
		"", "sgt_", token[:len(token)-1], token + "a", strings.ToUpper(token), "xyz" + token[3:],
		strings.Replace(token, "_", "-", 2), token[:20] + "!" + token[21:],
	} {
		if _, _, ok := signet.ParseAPIKeyToken(bad); ok {
			t.Errorf("ParseAPIKeyToken(%q) accepted a malformed token", bad)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	err := signet.E("sqlite.CreateTeam", signet.Conflict, `team "ml" already exists`, errTest("UNIQUE constraint failed: teams.name"))
	if got := signet.ErrorMessage(err); got != `team "ml" already exists` {
		t.Errorf("message %q", got)
	}
	if signet.ErrorCode(err) != signet.Conflict {
		t.Errorf("code %v", signet.ErrorCode(err))
	}
	if got := signet.ErrorMessage(errTest("secret detail")); got != "internal error" {
		t.Errorf("message of a foreign error = %q, want a generic one", got)
	}
	if signet.ErrorCode(errTest("x")) != signet.Internal || signet.ErrorCode(nil) != "" {
		t.Error("ErrorCode of foreign error or nil")
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
