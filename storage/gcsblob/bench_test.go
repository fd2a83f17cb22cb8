package gcsblob_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
	"github.com/signetdev/signet/storage/storagetest"
)

// BenchmarkSign measures the cost of one download URL, in the same run:
//
//   - SDK: cloud.google.com/go/storage's SignedURL with a service account
//     key (GOOG4-RSA-SHA256), which parses the PEM key on every call: the
//     baseline;
//   - RSA: the driver with the same key, parsed once at Open;
//   - HMAC: the driver with an HMAC key (GOOG4-HMAC-SHA256);
//   - Keyless: the driver without a key, each URL signed by a signBlob
//     call to the in-test signBlob server (see signBlobServer) over
//     loopback HTTP: a lower bound, since Google is a network round trip
//     away.
//
// Each driver sub-benchmark reports its cost as a ratio to the SDK's in
// the same run (x-SDK): compare those, not absolute times. Run them
// together:
//
//	go test ./storage/gcsblob -run NONE -bench Sign -benchmem -count 3
func BenchmarkSign(b *testing.B) {
	keyFile, _, _ := serviceAccount(b)
	now := time.Now()
	o := &driver.SignOptions{
		Method: http.MethodGet, Bucket: "test-bucket", Key: "datasets/train/shard-00042.tar",
		Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1, GrantID: "abcdefghijklmnop",
	}
	var base storagetest.Baselines // the SDK in this run
	b.Run("SDK", func(b *testing.B) {
		for b.Loop() {
			sdkSignedURL(b, keyFile, http.MethodGet, o.Key, time.Now().Add(time.Hour), "", nil, nil)
		}
		base.SDK = storagetest.NsPerOp(b)
	})
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
			base.Report(b)
		})
	}
	run("RSA", gcsblob.Config{Bucket: "test-bucket", CredentialsJSON: keyFile})
	run("HMAC", gcsblob.Config{Bucket: "test-bucket", HMACAccessID: "GOOG1EXAMPLE", HMACSecret: "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"})

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	const email = "signer@test-project.iam.gserviceaccount.com"
	iam := testpeer.StartSignBlob(b, key, email, "t")
	run("Keyless", gcsblob.Config{Bucket: "test-bucket", ServiceAccount: email, IAMEndpoint: iam.URL,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})})
}
