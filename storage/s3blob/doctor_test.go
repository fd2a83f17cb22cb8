package s3blob_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
	"github.com/signetdev/signet/storage/storagetest"
)

// diagnose runs Diagnose and returns its checks by name.
func diagnose(t *testing.T, b *s3blob.Backend, opts *driver.DiagnoseOptions) map[string]driver.Check {
	t.Helper()
	return storagetest.Diagnose(t, b, opts)
}

func wantStatus(t *testing.T, checks map[string]driver.Check, name string, want ...string) {
	t.Helper()
	c, ok := checks[name]
	if !ok {
		t.Errorf("no %q check", name)
		return
	}
	for _, w := range want {
		if c.Status == w {
			return
		}
	}
	t.Errorf("check %q: %s (%s), want %s", name, c.Status, c.Detail, strings.Join(want, " or "))
}

// TestDiagnose checks a bucket configured as signet recommends and a bare
// one against the real S3 server. Where MinIO does not implement a
// setting, the test says so and accepts "skip" for that check only.
func TestDiagnose(t *testing.T) {
	ctx := context.Background()
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")}
	opts := &driver.DiagnoseOptions{Team: "ml", Origins: []string{"https://app.example.com"}, Networks: nets}

	t.Run("Failing", func(t *testing.T) {
		b, _, _ := minioBackend(t, func(c *s3blob.Config) { c.Prefix = "ml/" })
		checks := diagnose(t, b, opts)
		wantStatus(t, checks, "credentials", driver.CheckOK)
		wantStatus(t, checks, "bucket", driver.CheckOK)
		wantStatus(t, checks, "clock", driver.CheckOK)
		wantStatus(t, checks, "lifecycle", driver.CheckFail)
		wantStatus(t, checks, "versioning", driver.CheckWarn)
		wantStatus(t, checks, "network", driver.CheckFail)
		wantStatus(t, checks, "encryption", driver.CheckWarn, driver.CheckOK)
		// MinIO has no bucket CORS (PutBucketCors is NotImplemented) and
		// answers every origin server-wide, so a bare bucket passes the
		// probe; the failing side is proven by TestCORSRules and
		// TestCORSProbe.
		wantStatus(t, checks, "cors", driver.CheckOK)
		if d := checks["cors"].Detail; !strings.Contains(d, "probed") {
			t.Errorf("cors detail %q does not say the store was probed", d)
		}
		if f := checks["network"].Fix; !strings.Contains(f, "signet policy apply ml") {
			t.Errorf("network fix %q", f)
		}
	})

	t.Run("Passing", func(t *testing.T) {
		b, peer, cfg := minioBackend(t, func(c *s3blob.Config) { c.Prefix = "ml/" })
		root := peer.Client()
		bucket := aws.String(cfg.Bucket)
		if _, err := root.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bucket,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatalf("enabling versioning: %v", err)
		}
		if _, err := root.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: bucket,
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256},
			}}}}); err != nil {
			t.Fatalf("setting default encryption: %v", err)
		}
		lifecycle := true
		if _, err := root.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: bucket,
			LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
				ID: aws.String("abort"), Status: types.ExpirationStatusEnabled,
				Filter:                         &types.LifecycleRuleFilter{Prefix: aws.String("")},
				AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(2)},
			}}}}); err != nil {
			lifecycle = false
			t.Logf("MinIO refuses an AbortIncompleteMultipartUpload lifecycle rule (%v); the lifecycle check can only fail here", err)
		}
		if _, err := root.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: bucket, CORSConfiguration: &types.CORSConfiguration{
			CORSRules: []types.CORSRule{{
				AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"GET", "HEAD", "PUT"},
				AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"},
			}}}}); err != nil {
			t.Logf("MinIO refuses PutBucketCors (%v); it answers CORS server-wide", err)
		}
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"keep","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetBucketLocation"],"Resource":["arn:aws:s3:::%[1]s"]},`+
			`{"Sid":"net","Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:*"],"Resource":["arn:aws:s3:::%[1]s/ml/*"],`+
			`"Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","10.1.0.0/16"]}}}]}`, cfg.Bucket)
		if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: bucket, Policy: aws.String(policy)}); err != nil {
			t.Fatalf("setting the bucket policy: %v", err)
		}

		checks := diagnose(t, b, opts)
		for _, name := range []string{"credentials", "bucket", "clock", "encryption", "versioning", "network"} {
			wantStatus(t, checks, name, driver.CheckOK)
		}
		if lifecycle {
			wantStatus(t, checks, "lifecycle", driver.CheckOK)
		}
		wantStatus(t, checks, "cors", driver.CheckOK)

		// A team whose allow-list differs from the bucket policy fails.
		other := *opts
		other.Networks = nets[:1]
		wantStatus(t, diagnose(t, b, &other), "network", driver.CheckFail)
		// No origins: CORS is not checked.
		other = *opts
		other.Origins = nil
		wantStatus(t, diagnose(t, b, &other), "cors", driver.CheckSkip)
	})

	t.Run("KMS", func(t *testing.T) {
		b, peer, cfg := minioBackend(t, func(c *s3blob.Config) { c.KMSKeyID = "some-other-key" })
		if _, err := peer.Client().PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(cfg.Bucket),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(peer.KMSKeyID)},
			}}}}); err != nil {
			t.Fatalf("setting KMS default encryption: %v", err)
		}
		wantStatus(t, diagnose(t, b, nil), "encryption", driver.CheckFail)
		b2, _, _ := minioBackend(t, func(c *s3blob.Config) { c.Bucket, c.KMSKeyID = cfg.Bucket, peer.KMSKeyID })
		wantStatus(t, diagnose(t, b2, nil), "encryption", driver.CheckOK)
	})

	t.Run("NoBucket", func(t *testing.T) {
		b, _, _ := minioBackend(t, func(c *s3blob.Config) { c.Bucket = "no-such-bucket-signet" })
		wantStatus(t, diagnose(t, b, nil), "bucket", driver.CheckFail)
	})

	t.Run("BadCredentials", func(t *testing.T) {
		b, _, _ := minioBackend(t, func(c *s3blob.Config) { c.SecretAccessKey = "wrong-secret-key-0000" })
		checks, err := b.Diagnose(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		failed := false
		for _, c := range checks {
			if c.Name == "credentials" && c.Status == driver.CheckFail {
				failed = true
			}
			if strings.Contains(c.Detail+c.Fix, "wrong-secret-key") {
				t.Errorf("check %q shows the secret", c.Name)
			}
		}
		if !failed {
			t.Errorf("wrong secret not reported as a credentials failure: %+v", checks)
		}
	})

	t.Run("ClockSkew", func(t *testing.T) {
		b, _, _ := minioBackend(t, func(c *s3blob.Config) {
			c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		})
		wantStatus(t, diagnose(t, b, nil), "clock", driver.CheckFail)
	})

	t.Run("RoleUsesOwnIdentity", func(t *testing.T) {
		// A role session may touch only objects below the prefix; bucket
		// settings are still read, as signet's own identity.
		b, peer, _ := minioBackend(t, func(c *s3blob.Config) {
			c.Prefix, c.RoleARN = "ml/", "arn:minio:iam:::role/signet"
		})
		_ = peer
		checks := diagnose(t, b, nil)
		wantStatus(t, checks, "credentials", driver.CheckOK)
		wantStatus(t, checks, "bucket", driver.CheckOK)
		wantStatus(t, checks, "versioning", driver.CheckWarn)
		if !strings.Contains(checks["credentials"].Detail, "valid for") {
			t.Errorf("role credentials detail %q does not state their lifetime", checks["credentials"].Detail)
		}
	})
}

// TestDiagnoseUnreachable: a store that does not answer is reported as
// such, with the cause, never as "HTTP 0", and without the credentials.
func TestDiagnoseUnreachable(t *testing.T) {
	const secret = "wJalrXUtnFEMI-doctor-secret"
	open := func(t *testing.T, endpoint string, client *http.Client) *s3blob.Backend {
		t.Helper()
		b, err := s3blob.Open(context.Background(), s3blob.Config{
			Bucket: "ml-data", Endpoint: endpoint, PathStyle: true, HTTPClient: client,
			AccessKeyID: "AKIDDOCTOR", SecretAccessKey: secret,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	check := func(t *testing.T, b *s3blob.Backend, cause string) {
		t.Helper()
		checks := storagetest.Diagnose(t, b, nil, secret, "X-Amz-Signature")
		storagetest.WantCheck(t, checks, "bucket", driver.CheckFail, "cannot list bucket ml-data: no answer from the store ("+cause+")")
		for _, name := range []string{"encryption", "lifecycle", "versioning"} {
			storagetest.WantCheck(t, checks, name, driver.CheckFail, "no answer from the store ("+cause+")")
		}
		for _, c := range checks {
			if strings.Contains(c.Detail, "HTTP 0") {
				t.Errorf("check %q: %q", c.Name, c.Detail)
			}
		}
	}

	t.Run("ConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		check(t, open(t, "http://"+addr, nil), "connection refused")
	})

	t.Run("Timeout", func(t *testing.T) {
		// Accepts connections and never answers.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		check(t, open(t, "http://"+l.Addr().String(), &http.Client{Timeout: 50 * time.Millisecond}), "timed out")
	})
}
