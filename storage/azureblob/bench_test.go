package azureblob_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/azureblob"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/storagetest"
)

// BenchmarkSign measures the cost of one download URL, in the same run:
//
//   - HMACFloor: one HMAC-SHA256 over a string-to-sign of a SAS's length
//     and its base64, the least any SAS signer must do;
//   - SDK: the azblob sas package alone (BlobSignatureValues.SignWithSharedKey
//     and QueryParameters.Encode);
//   - Driver: Backend.SignedURL, which is the SDK plus the checks and the URL.
//
// Each sub-benchmark after the first reports its cost as ratios to the
// ones before it in the same run (x-floor, x-SDK): compare those, not
// absolute times (see docs/performance.md). Run the three together:
//
//	go test ./storage/azureblob -run NONE -bench Sign -benchmem -count 3
func BenchmarkSign(b *testing.B) {
	var base storagetest.Baselines // HMACFloor and SDK in this run
	now := time.Now()
	expires := now.Truncate(time.Second).Add(time.Hour)
	key, _ := base64.StdEncoding.DecodeString(testpeer.AzuriteKey)
	sts := "r\n2026-11-27T10:25:15Z\n2026-11-27T11:30:15Z\n/blob/devstoreaccount1/container/datasets/train/shard-00042.tar\n\n\nhttps\n2026-12-06\nb\n\n\n\n\n\n\n"
	b.Run("HMACFloor", func(b *testing.B) {
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(sts))
			_ = base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
		base.Floor = storagetest.NsPerOp(b)
	})
	cred, err := container.NewSharedKeyCredential("devstoreaccount1", testpeer.AzuriteKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("SDK", func(b *testing.B) {
		for b.Loop() {
			qp, err := sas.BlobSignatureValues{
				Protocol: sas.ProtocolHTTPS, StartTime: now.Add(-5 * time.Minute), ExpiryTime: expires,
				Permissions: "r", ContainerName: "container", BlobName: "datasets/train/shard-00042.tar",
			}.SignWithSharedKey(cred)
			if err != nil {
				b.Fatal(err)
			}
			_ = qp.Encode()
		}
		base.SDK = storagetest.NsPerOp(b)
		storagetest.Baselines{Floor: base.Floor}.Report(b)
	})
	be, err := azureblob.Open(context.Background(), azureblob.Config{
		Account: "devstoreaccount1", Container: "container", SharedKey: testpeer.AzuriteKey,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Driver", func(b *testing.B) {
		o := &driver.SignOptions{
			Method: http.MethodGet, Bucket: "container", Key: "datasets/train/shard-00042.tar",
			Now: now, Expires: expires, Size: -1, GrantID: "abcdefghijklmnop",
		}
		for b.Loop() {
			if _, err := be.SignedURL(context.Background(), o); err != nil {
				b.Fatal(err)
			}
		}
		base.Report(b)
	})
}
