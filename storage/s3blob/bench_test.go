package s3blob_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
	"github.com/signetdev/signet/storage/storagetest"
)

const (
	benchBucket = "signet-bench-bucket"
	benchKey    = "team-a/datasets/shard-0001.parquet"
	benchID     = "AKIAIOSFODNN7EXAMPLE"
	benchSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// BenchmarkSign measures one download URL (virtual-hosted bucket, a
// 34-byte key, static credentials, one hour) three ways in the same run:
//
//   - HMACFloor: the least work any SigV4 presigner does: with a cached
//     signing key and a reused HMAC, hash a fixed short canonical request,
//     HMAC the string to sign and hex-encode the signature. No encoding,
//     no sorting, no URL;
//   - SDK: aws-sdk-go-v2's s3.PresignClient.PresignGetObject;
//   - Driver: signet's hot path, Backend.SignedURL for the same GET, grant
//     id included, the *driver.SignedURL allocated.
//
// Each sub-benchmark after the first reports its cost as ratios to the
// ones before it in the same run (x-floor, x-SDK): compare those, not
// absolute times, which move with the shared machine's load (see
// docs/s3.md, "Performance"). Run them together:
//
//	go test ./storage/s3blob -run NONE -bench Sign -benchmem -count 5
//
// (BenchmarkSignerCore, signer_internal_test.go, is the signer alone.)
func BenchmarkSign(b *testing.B) {
	var base storagetest.Baselines // HMACFloor and SDK in this run

	b.Run("HMACFloor", func(b *testing.B) {
		key := []byte("AWS4" + benchSecret)
		for _, s := range []string{"20260101", "us-east-1", "s3", "aws4_request"} {
			h := hmac.New(sha256.New, key)
			h.Write([]byte(s))
			key = h.Sum(nil)
		}
		mac := hmac.New(sha256.New, key)
		canonical := []byte("GET\n/k\nX-Amz-Date=20260101T000000Z\nhost:h\n\nhost\nUNSIGNED-PAYLOAD")
		prefix := []byte("AWS4-HMAC-SHA256\n20260101T000000Z\n20260101/us-east-1/s3/aws4_request\n")
		var hexSum [64]byte
		var sig [sha256.Size]byte
		var out [64]byte
		b.ReportAllocs()
		for b.Loop() {
			sum := sha256.Sum256(canonical)
			hex.Encode(hexSum[:], sum[:])
			mac.Reset()
			mac.Write(prefix)
			mac.Write(hexSum[:])
			hex.Encode(out[:], mac.Sum(sig[:0]))
		}
		base.Floor = storagetest.NsPerOp(b)
	})

	b.Run("SDK", func(b *testing.B) {
		client := s3.New(s3.Options{
			Region:      "us-east-1",
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(benchID, benchSecret, "")),
		})
		pc := s3.NewPresignClient(client, s3.WithPresignExpires(time.Hour))
		in := &s3.GetObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(benchKey)}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pc.PresignGetObject(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		base.SDK = storagetest.NsPerOp(b)
		storagetest.Baselines{Floor: base.Floor}.Report(b)
	})

	b.Run("Driver", func(b *testing.B) {
		be, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: benchBucket, AccessKeyID: benchID, SecretAccessKey: benchSecret})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		o := &driver.SignOptions{
			Method: "GET", Bucket: benchBucket, Key: benchKey, Size: -1, GrantID: "g7Hk2PqX9aZ",
			Now: now, Expires: now.Truncate(time.Second).Add(time.Hour),
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := be.SignedURL(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
		base.Report(b)
	})
}
