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
	admin, peer, _ := minioTeam(t)
	admin.must("team", "set", "ml", "--allow-cidr", "127.0.0.0/8")
	bob := addMember(admin, "ml", "bob", "member")

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

	// Every team the caller administers, as JSON: the default team's local
	// store gets its own checks.
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
	local := byTeam["default"]
	if local.Backend != "local" || !local.OK {
		t.Errorf("default (local) report %+v", local)
	}
	localChecks := map[string]driver.Check{}
	for _, c := range local.Checks {
		localChecks[c.Name] = c
	}
	for name, want := range map[string]string{
		"directory": driver.CheckOK,   // the server's data directory is writable
		"keys":      driver.CheckOK,   // a fresh key file, mode 0600
		"url":       driver.CheckOK,   // loopback URLs from a loopback listener
		"network":   driver.CheckSkip, // the default team has no allow-list
	} {
		if c := localChecks[name]; c.Status != want {
			t.Errorf("local check %q: %+v, want %s", name, c, want)
		}
	}
	if c := localChecks["disk"]; !strings.Contains(c.Detail, "free below") {
		t.Errorf("local disk check %+v", c)
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

// TestDoctorAzureGCS runs signet doctor through the CLI on connectors of
// Azurite and fake-gcs-server: each store gets its own checks, and the
// exit status follows the failures.
func TestDoctorAzureGCS(t *testing.T) {
	azure := testpeer.Azurite(t)
	gcs := testpeer.FakeGCS(t)
	admin := serverWithTeams(t, "cv", "geo")
	setAzureConnector(admin, azure, "cv", azure.Container(t), "--prefix", "cv/")
	set := admin
	set.env = map[string]string{"SIGNET_HMAC_SECRET": "doctor-cli-hmac-secret"}
	set.must("connector", "set", "geo", "--backend", "gcs", "--bucket", gcs.Bucket(t), "--prefix", "geo/",
		"--endpoint", gcs.Endpoint, "--hmac-access-id", "GOOG1EXAMPLE")

	// Azure without browser origins: nothing fails (soft delete off is a
	// warning, lifecycle a management-plane skip).
	r := admin.run("doctor", "--team", "cv")
	if r.code != 0 {
		t.Errorf("doctor on Azurite without origins: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"credentials", "versioning", "warn", "fix: az storage account blob-service-properties update", "lifecycle", "skip"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("azure doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	// With an origin the account has no CORS rule for: a failure.
	r = admin.run("doctor", "--team", "cv", "--origin", "https://app.example.com")
	if r.code != 1 || !strings.Contains(r.stdout, "fix: az storage cors add") {
		t.Errorf("doctor on Azurite with an origin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// GCS: the bare bucket has no lifecycle rule.
	r = admin.run("doctor", "--team", "geo", "--json")
	var reps []sighttp.DoctorReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("doctor --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if r.code != 1 || reps[0].OK || reps[0].Backend != "gcs" || len(reps[0].Checks) != 8 {
		t.Errorf("gcs report: exit %d, %+v", r.code, reps[0])
	}
	for _, c := range reps[0].Checks {
		if c.Name == "lifecycle" && (c.Status != driver.CheckFail || !strings.Contains(c.Fix, "AbortIncompleteMultipartUpload")) {
			t.Errorf("gcs lifecycle check %+v", c)
		}
		if c.Name == "bucket" && c.Status != driver.CheckOK {
			t.Errorf("gcs bucket check %+v", c)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "doctor-cli-hmac-secret") || strings.Contains(r.stdout+r.stderr, azure.Key) {
		t.Error("doctor printed a secret")
	}
}
