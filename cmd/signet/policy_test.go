package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// getFrom GETs url from the loopback address src and answers the status.
func getFrom(t *testing.T, src, url string) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET from %s: %v", src, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestNetworkPolicyS3 drives the team allow-list into the store through
// the real server and MinIO: URLs of a role connector work from the
// team's networks only, a change of the allow-list takes effect on the
// next presign (a new signing session), and signet policy render/apply
// put signet's Deny statement into the bucket policy next to others'.
// The CLI talks to signet from 127.0.0.1, so that address is in every
// allow-list; 127.0.0.2 and 127.0.0.3 are the two clients of the URLs.
func TestNetworkPolicyS3(t *testing.T) {
	admin, peer, bucket := minioTeam(t, "--role-arn", "arn:minio:iam:::role/signet-test")
	trainer := addMember(admin, "ml", "trainer", "admin", "--service")

	if _, err := peer.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("ml/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}

	// No allow-list: nothing to render.
	if r := admin.run("policy", "render", "ml"); r.code == 0 || !strings.Contains(r.stderr, "(invalid)") {
		t.Errorf("render without an allow-list: exit %d, %s", r.code, r.stderr)
	}

	admin.must("team", "set", "ml", "--allow-cidr", "127.0.0.1/32", "--allow-cidr", "127.0.0.2/32")
	url := strings.TrimSpace(trainer.must("presign", "get", "ml", "x"))
	if !strings.Contains(url, "X-Amz-Security-Token=") {
		t.Fatalf("URL not signed with a role session")
	}
	// The tamper check of this suite: MinIO verifies signatures.
	if st := getFrom(t, "127.0.0.2", strings.Replace(url, "X-Amz-Signature=", "X-Amz-Signature=0", 1)); st != 403 {
		t.Fatalf("MinIO answered %d to a tampered URL; invalid environment", st)
	}
	if st := getFrom(t, "127.0.0.2", url); st != 200 {
		t.Errorf("URL used from 127.0.0.2 (allowed) answered %d, want 200", st)
	}
	if st := getFrom(t, "127.0.0.3", url); st != 403 {
		t.Errorf("URL used from 127.0.0.3 (not allowed) answered %d, want 403", st)
	}

	// The next presign after a change signs with the new networks.
	admin.must("team", "set", "ml", "--allow-cidr", "127.0.0.1/32", "--allow-cidr", "127.0.0.3/32")
	url = strings.TrimSpace(trainer.must("presign", "get", "ml", "x"))
	if st := getFrom(t, "127.0.0.3", url); st != 200 {
		t.Errorf("after the change, URL used from 127.0.0.3 answered %d, want 200", st)
	}
	if st := getFrom(t, "127.0.0.2", url); st != 403 {
		t.Errorf("after the change, URL used from 127.0.0.2 answered %d, want 403", st)
	}

	// Render and apply: instance admins only.
	if r := trainer.run("policy", "render", "ml"); r.code == 0 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("render by a team admin: exit %d, %s", r.code, r.stderr)
	}
	if r := trainer.run("policy", "apply", "ml"); r.code == 0 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("apply by a team admin: exit %d, %s", r.code, r.stderr)
	}
	rendered := admin.must("policy", "render", "ml")
	var doc struct {
		Statement []struct {
			Sid       string
			Effect    string
			Resource  []string
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal([]byte(rendered), &doc); err != nil || len(doc.Statement) != 1 {
		t.Fatalf("render printed %q (%v), want a policy with one statement", rendered, err)
	}
	st := doc.Statement[0]
	if st.Sid != "signet-team-ml-network" || st.Effect != "Deny" || st.Resource[0] != "arn:aws:s3:::"+bucket+"/ml/*" ||
		!slices.Equal(st.Condition["NotIpAddress"]["aws:SourceIp"], []string{"127.0.0.1/32", "127.0.0.3/32"}) {
		t.Errorf("rendered statement %+v", st)
	}

	theirs := `{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + bucket + `/public/*"]}`
	if _, err := peer.Client().PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[` + theirs + `]}`)}); err != nil {
		t.Fatal(err)
	}
	out := admin.must("policy", "apply", "ml")
	if !strings.Contains(out, "applied statement signet-team-ml-network") || !strings.Contains(out, "1 other statements kept") {
		t.Errorf("apply printed %q", out)
	}
	got, err := peer.Client().GetBucketPolicy(context.Background(), &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if p := aws.ToString(got.Policy); !strings.Contains(p, "signet-team-ml-network") || !strings.Contains(p, `"Theirs"`) || !strings.Contains(p, "127.0.0.3/32") {
		t.Errorf("stored policy %s lacks signet's or the other statement", p)
	}

	// Clearing the allow-list and applying removes signet's statement only.
	admin.must("team", "set", "ml", "--allow-any-network")
	var info sighttp.NetworkPolicyInfo
	if err := json.Unmarshal([]byte(admin.must("policy", "apply", "ml", "--json")), &info); err != nil || !info.Removed || info.Kept != 1 {
		t.Errorf("apply without networks: %+v, %v", info, err)
	}
	got, _ = peer.Client().GetBucketPolicy(context.Background(), &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if p := aws.ToString(got.Policy); strings.Contains(p, "signet-team-ml-network") || !strings.Contains(p, `"Theirs"`) {
		t.Errorf("after removal the stored policy is %s", p)
	}

	// Every render and apply is in the audit log, refusals too.
	var evs []*signet.AuditEvent
	json.Unmarshal([]byte(admin.must("audit", "list", "--team", "ml", "--all", "--json")), &evs)
	count := map[string]int{}
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "policy.") {
			count[e.Action+" "+e.Outcome]++
			if e.Outcome == signet.OutcomeAllowed && (e.Bucket != bucket || e.Store != "s3") {
				t.Errorf("audit event %+v lacks the store or bucket", e)
			}
		}
	}
	want := map[string]int{"policy.render allowed": 1, "policy.render denied": 2, "policy.apply allowed": 2, "policy.apply denied": 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("audit: %d %q events, want %d (all: %v)", count[k], k, n, count)
		}
	}
}

// TestNetworkPolicyOtherBackends: GCS renders a bucket IP filter and
// refuses to apply it with the gcloud command to run; the local store has
// no store-side policy.
func TestNetworkPolicyOtherBackends(t *testing.T) {
	admin := serverWithTeams(t, "cv")
	set := admin
	set.env = map[string]string{"SIGNET_HMAC_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
	set.must("connector", "set", "cv", "--backend", "gcs", "--bucket", "cv-data", "--hmac-access-id", "GOOG1EXAMPLE")
	admin.must("team", "set", "cv", "--allow-cidr", "203.0.113.0/24", "--allow-cidr", "10.1.0.0/16")
	r := admin.run("policy", "render", "cv")
	var f struct {
		Mode                string
		PublicNetworkSource struct{ AllowedIPCidrRanges []string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &f) != nil || f.Mode != "Enabled" ||
		!slices.Equal(f.PublicNetworkSource.AllowedIPCidrRanges, []string{"203.0.113.0/24"}) {
		t.Errorf("gcs render: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "10.1.0.0/16") || !strings.Contains(r.stderr, "whole bucket") {
		t.Errorf("gcs render notes do not name the private range or the bucket-wide scope: %s", r.stderr)
	}
	if r := admin.run("policy", "apply", "cv"); r.code == 0 || !strings.Contains(r.stderr, "(unimplemented)") ||
		!strings.Contains(r.stderr, "gcloud storage buckets update gs://cv-data --ip-filter-file") {
		t.Errorf("gcs apply: exit %d, %s", r.code, r.stderr)
	}

	admin.must("team", "create", "loc")
	admin.must("connector", "set", "loc", "--backend", "local")
	admin.must("team", "set", "loc", "--allow-cidr", "127.0.0.0/8")
	if r := admin.run("policy", "render", "loc"); r.code == 0 || !strings.Contains(r.stderr, "(unimplemented)") || !strings.Contains(r.stderr, "docs/") {
		t.Errorf("local render: exit %d, %s", r.code, r.stderr)
	}
	if r := admin.run("policy", "render", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("render for a missing team: exit %d, %s", r.code, r.stderr)
	}
}

// openS3 reads the team's networks under the option name the server sets.
func TestTeamNetworksOption(t *testing.T) {
	if sighttp.OptionTeamNetworks != "team_networks" {
		t.Errorf("the server sets %q, openS3 reads team_networks", sighttp.OptionTeamNetworks)
	}
}
