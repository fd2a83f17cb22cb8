package s3blob

import (
	"testing"
	"time"
)

// BenchmarkSignerCore is the signer alone, for the URL of BenchmarkSign's
// Driver (bench_test.go): canonical request, string to sign, signature and
// URL query appended to a reused buffer, no allocation. Driver adds
// validation, the URL string and the result.
func BenchmarkSignerCore(b *testing.B) {
	var s signer
	in := presignInput{
		method: "GET", host: "signet-bench-bucket.s3.us-east-1.amazonaws.com",
		path:        []byte("/team-a/datasets/shard-0001.parquet"),
		query:       []param{{GrantParam, "g7Hk2PqX9aZ"}},
		payloadHash: unsignedPayload, region: "us-east-1", service: "s3",
		accessKeyID: "AKIAIOSFODNN7EXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		time: time.Now(), expires: 3600,
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.appendPresigned(buf[:0], &in, nil)
	}
}
