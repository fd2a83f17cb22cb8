package main

import (
	"encoding/json"
	"strings"
	"testing"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
)

// TestDoctor runs signet doctor through the CLI against a bare MinIO
// bucket: it fails with a fix per failed check, skips the local store,
// refuses non-admins and audits each run.
func TestDoctor(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	m, token := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: token}
	admin.must("team", "create", "ml")
	admin.must("team", "set", "ml", "--allow-cidr", "127.0.0.0/8")
	admin.must("user", "create", "bob")
	admin.must("member", "add", "ml", "bob", "--role", "member")
	bob := admin.as(strings.TrimSpace(admin.must("key", "create", "bob")))
	set := admin
	set.env = map[string]string{"SIGNET_SECRET_ACCESS_KEY": peer.SecretAccessKey}
	set.must("connector", "set", "ml", "--backend", "s3", "--bucket", bucket, "--prefix", "ml/",
		"--endpoint", peer.Endpoint, "--region", peer.Region, "--path-style", "--access-key-id", peer.AccessKeyID)

	r := admin.run("doctor", "--team", "ml", "--origin", "https://app.example.com")
	if r.code != 1 {
		t.Fatalf("doctor on a bare bucket: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"lifecycle", "fail", "fix: aws s3api put-bucket-lifecycle-configuration", "fix: signet policy apply ml", "bucket"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "check(s) failed") {
		t.Errorf("stderr %q does not say checks failed", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, peer.SecretAccessKey) {
		t.Error("doctor printed the secret")
	}

	// Every team the caller administers, as JSON: the local store is not
	// checked yet and says so.
	r = admin.run("doctor", "--json")
	var reps []sighttp.DoctorReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	byTeam := map[string]sighttp.DoctorReport{}
	for _, rep := range reps {
		byTeam[rep.Team] = rep
	}
	if rep := byTeam["ml"]; rep.OK || rep.Backend != "s3" || len(rep.Checks) < 8 {
		t.Errorf("ml report %+v", rep)
	}
	if rep := byTeam["default"]; len(rep.Checks) != 1 || rep.Checks[0].Status != driver.CheckSkip ||
		!strings.Contains(rep.Checks[0].Detail, "cannot check local connectors") {
		t.Errorf("default (local) report %+v", rep)
	}

	// A member who is not the team's admin may not run it.
	if r := bob.run("doctor", "--team", "ml"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("member ran doctor: exit %d %s", r.code, r.stderr)
	}
	if r := admin.run("doctor", "--team", "ml", "--origin", "ftp://x"); r.code != 1 || !strings.Contains(r.stderr, "invalid") {
		t.Errorf("bad origin: exit %d %s", r.code, r.stderr)
	}

	// Each run is on the record, with its failed checks.
	list := admin.must("audit", "list", "--all", "--limit", "1000", "--json")
	if n := strings.Count(list, `"connector.check"`); n < 4 {
		t.Errorf("%d connector.check audit entries, want at least 4", n)
	}
	if !strings.Contains(list, "failed checks: ") {
		t.Error("audit does not name the failed checks")
	}
}
