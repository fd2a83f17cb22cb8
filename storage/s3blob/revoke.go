package s3blob

import (
	"strings"
	"time"
)

// RevokeSessionsStatement returns a bucket policy statement (one JSON
// object) that denies every request to the objects below prefix in bucket
// made with credentials of roleARN's sessions issued before before: the
// condition aws:TokenIssueTime < before refuses the URLs those sessions
// signed, and sessions assumed afterwards are unaffected. before is cut
// to the second (IAM compares whole seconds), so a session issued in the
// same second as the revocation, before it, is not covered. Only the
// latest revocation of a team matters: its statement covers the earlier
// ones. The statement is meant to be merged into the bucket's policy
// (see signet policy render/apply); S3-compatible stores that do not know
// aws:TokenIssueTime (MinIO) do not enforce it.
func RevokeSessionsStatement(region, bucket, prefix, roleARN string, before time.Time) string {
	var b strings.Builder
	b.WriteString(`{"Sid":"SignetRevokeOlderSessions","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:`)
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
