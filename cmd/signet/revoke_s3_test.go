package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	sighttp "github.com/signetdev/signet/http"
)

// signingKey returns the access key id an S3 URL is signed with.
func signingKey(t *testing.T, u string) string {
	t.Helper()
	q, err := url.ParseQuery(u[strings.IndexByte(u, '?')+1:])
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(q.Get("X-Amz-Credential"), "/")
	if id == "" {
		t.Fatalf("URL carries no X-Amz-Credential")
	}
	return id
}

// TestRevokeS3Role revokes a team whose connector signs with an assumed
// role, against MinIO: the answer carries the deny-older-sessions
// statement, and the next URL is signed by a new session.
func TestRevokeS3Role(t *testing.T) {
	admin, peer, bucket := minioTeam(t, "--role-arn", "arn:minio:iam:::role/signet-test")

	put := strings.TrimSpace(admin.must("presign", "put", "ml", "f"))
	if st := send(t, http.MethodPut, put, nil, []byte("data")); st != http.StatusOK {
		t.Fatalf("upload through the role session answered %d", st)
	}
	old := presignGet(t, admin, "ml", "f")
	oldKey := signingKey(t, old)
	if oldKey == peer.AccessKeyID || signingKey(t, put) != oldKey {
		t.Fatalf("URLs are not signed by one role session")
	}

	// An operator's own statement in the bucket policy, which signet's
	// merge must keep.
	root := peer.Client()
	own := `{"Version":"2012-10-17","Statement":[{"Sid":"operator","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetBucketLocation"],"Resource":["arn:aws:s3:::` + bucket + `"]}]}`
	if _, err := root.PutBucketPolicy(t.Context(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(own)}); err != nil {
		t.Fatal(err)
	}

	var out sighttp.RevokeResponse
	if err := json.Unmarshal([]byte(admin.must("revoke", "--team", "ml", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Stores) != 1 || out.Stores[0].Effect != sighttp.RevokeSessionReplaced || len(out.Stores[0].PolicyStatement) == 0 {
		t.Fatalf("revoke answer %+v, want the session replaced and a policy statement", out.Stores)
	}
	sr := out.Stores[0]
	var stmt struct{ Sid string }
	if err := json.Unmarshal(sr.PolicyStatement, &stmt); err != nil || stmt.Sid != "signet-team-ml-revoke" {
		t.Errorf("statement %s: Sid %q, want the team's (%v)", sr.PolicyStatement, stmt.Sid, err)
	}
	got, err := root.GetBucketPolicy(t.Context(), &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	policy := aws.ToString(got.Policy)
	if !strings.Contains(policy, `"operator"`) {
		t.Errorf("the operator's statement is gone: %s", policy)
	}
	if sr.PolicyApplied {
		// A store that takes the statement must enforce it.
		if !strings.Contains(policy, "signet-team-ml-revoke") {
			t.Errorf("applied, but the bucket policy lacks it: %s", policy)
		}
		if st, _ := fetch(t, old); st != http.StatusForbidden {
			t.Errorf("old session's URL answered %d under the deny, want 403", st)
		}
	} else {
		// MinIO knows neither aws:TokenIssueTime nor ArnEquals and
		// refuses the policy; signet says so, and the URLs of the old
		// session stay valid until they expire, as docs/security.md says.
		if !strings.Contains(strings.Join(sr.Limitations, " "), "MalformedPolicy") {
			t.Errorf("limitations %q do not name the store's refusal", sr.Limitations)
		}
		if strings.Contains(policy, "signet-team-ml-revoke") {
			t.Errorf("refused statement in the bucket policy: %s", policy)
		}
		t.Logf("MinIO refuses the deny on older sessions; checking that the old URL still works, as documented")
		wantWorks(t, "old session's URL (not revocable on MinIO)", old)
	}

	// The next URL comes from a new session, and works.
	fresh := presignGet(t, admin, "ml", "f")
	if k := signingKey(t, fresh); k == oldKey || k == peer.AccessKeyID {
		t.Errorf("URL after the revocation signed with %s, want a new session's key (old %s)", k, oldKey)
	}
	wantWorks(t, "URL of the new session", fresh)
}
