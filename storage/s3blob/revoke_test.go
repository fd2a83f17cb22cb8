package s3blob_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/s3blob"
)

func TestRevokeSessionsStatement(t *testing.T) {
	before := time.Date(2026, 11, 27, 10, 0, 0, 999_000_000, time.UTC)
	raw := s3blob.RevokeSessionsStatement("cn-north-1", "bkt", `ml/"x`, "ml", "arn:aws-cn:iam::1:role/signet", before)
	var st struct {
		Sid, Effect, Principal, Action string
		Resource                       []string
		Condition                      map[string]map[string]string
	}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	if st.Sid != s3blob.RevokeStatementID("ml") || st.Effect != "Deny" || st.Principal != "*" || st.Action != "s3:*" {
		t.Errorf("statement %+v", st)
	}
	if len(st.Resource) != 1 || st.Resource[0] != `arn:aws-cn:s3:::bkt/ml/"x*` {
		t.Errorf("resource %q", st.Resource)
	}
	if st.Condition["ArnEquals"]["aws:PrincipalArn"] != "arn:aws-cn:iam::1:role/signet" ||
		st.Condition["DateLessThan"]["aws:TokenIssueTime"] != "2026-11-27T10:00:00Z" {
		t.Errorf("condition %v (the time is cut to the second)", st.Condition)
	}
}

func TestApplyRevocationNeedsRole(t *testing.T) {
	b, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bkt", Endpoint: "http://127.0.0.1:1",
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ApplyRevocation(context.Background(), "ml", time.Now()); signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("static keys: %v, want invalid", err)
	}
}
