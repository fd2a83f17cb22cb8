package s3blob

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet"
)

// RevokeStatementID is the Sid of the statement that denies team's older
// role sessions in a bucket policy; a later revocation replaces it.
func RevokeStatementID(team string) string {
	return "signet-team-" + team + "-revoke"
}

// RevokeSessionsStatement returns a bucket policy statement (one JSON
// object) that denies every request to the objects below prefix in bucket
// made with credentials of roleARN's sessions issued before before: the
// condition aws:TokenIssueTime < before refuses the URLs those sessions
// signed, and sessions assumed afterwards are unaffected. before is cut
// to the second (IAM compares whole seconds), so a session issued in the
// same second as the revocation, before it, is not covered. Only the
// latest revocation of a team matters: its statement (Sid
// RevokeStatementID) covers the earlier ones. S3-compatible stores that do
// not know aws:TokenIssueTime (MinIO) refuse it.
func RevokeSessionsStatement(region, bucket, prefix, team, roleARN string, before time.Time) string {
	var b strings.Builder
	b.WriteString(`{"Sid":"`)
	b.WriteString(jsonEscape(RevokeStatementID(team)))
	b.WriteString(`","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:`)
	b.WriteString(awsPartition(region))
	b.WriteString(`:s3:::`)
	b.WriteString(jsonEscape(bucket + "/" + prefix))
	b.WriteString(`*"],"Condition":{"ArnEquals":{"aws:PrincipalArn":"`)
	b.WriteString(jsonEscape(roleARN))
	b.WriteString(`"},"DateLessThan":{"aws:TokenIssueTime":"`)
	b.WriteString(before.UTC().Truncate(time.Second).Format(time.RFC3339))
	b.WriteString(`"}}}`)
	return b.String()
}

// ApplyRevocation merges into the bucket's policy, replacing team's
// earlier one, the statement that denies the backend's role sessions
// issued before before (RevokeSessionsStatement), and returns it. Other
// statements are kept. The policy is read and written with signet's own
// identity (s3:GetBucketPolicy, s3:PutBucketPolicy); like
// ApplyNetworkPolicy, the read-modify-write is not atomic. Errors: Invalid
// when the backend signs without a role or the present policy does not
// parse; the store's refusal, naming its error code (MinIO answers
// MalformedPolicy: it knows neither aws:TokenIssueTime nor ArnEquals).
func (b *Backend) ApplyRevocation(ctx context.Context, team string, before time.Time) (json.RawMessage, error) {
	const op = "s3blob.ApplyRevocation"
	if b.roleARN == "" {
		return nil, signet.E(op, signet.Invalid, "the connector signs with static keys, not a role: there is no session to deny", nil)
	}
	stmt := json.RawMessage(RevokeSessionsStatement(b.region, b.bucket, b.prefix, team, b.roleARN, before))
	existing, err := b.GetBucketPolicy(ctx)
	if err != nil {
		return stmt, err
	}
	merged, _, err := MergeBucketPolicy(existing, RevokeStatementID(team), stmt)
	if err != nil {
		return stmt, err
	}
	if _, err := b.config.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(b.bucket), Policy: aws.String(merged)}); err != nil {
		msg := "the store refused the bucket policy"
		if code := apiCode(err); code != "" {
			msg += " (" + code + ")"
		}
		return stmt, signet.E(op, storeCode(err), msg, err)
	}
	return stmt, nil
}
