package gcsblob_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// BenchmarkSign measures the cost of one download URL, in the same run:
//
//   - HMAC: the driver with an HMAC key (GOOG4-HMAC-SHA256);
//   - RSA: the driver with a service account key (GOOG4-RSA-SHA256, the
//     key parsed once at Open);
//   - SDK: cloud.google.com/go/storage's SignedURL with the same key,
//     which parses the PEM key on every call.
//
// Compare the ratios RSA/HMAC and SDK/RSA, not absolute times.
func BenchmarkSign(b *testing.B) {
	keyFile, _, _ := serviceAccount(b)
	now := time.Now()
	o := &driver.SignOptions{
		Method: http.MethodGet, Bucket: "test-bucket", Key: "datasets/train/shard-00042.tar",
		Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1, GrantID: "abcdefghijklmnop",
	}
	run := func(name string, cfg gcsblob.Config) {
		be, err := gcsblob.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := be.SignedURL(context.Background(), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("HMAC", gcsblob.Config{Bucket: "test-bucket", HMACAccessID: "GOOG1EXAMPLE", HMACSecret: "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"})
	run("RSA", gcsblob.Config{Bucket: "test-bucket", CredentialsJSON: keyFile})
	b.Run("SDK", func(b *testing.B) {
		for b.Loop() {
			sdkSignedURL(b, keyFile, http.MethodGet, o.Key, time.Now().Add(time.Hour), "", nil, nil)
		}
	})
}
