package gcsblob_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// sdkSignedURL signs with cloud.google.com/go/storage's SignedURL (V4,
// path style), the official SDK.
func sdkSignedURL(t testing.TB, keyFile []byte, method, key string, expires time.Time, ct string, headers []string, q url.Values) string {
	t.Helper()
	var f struct {
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(keyFile, &f); err != nil {
		t.Fatal(err)
	}
	u, err := storage.SignedURL("test-bucket", key, &storage.SignedURLOptions{
		GoogleAccessID: f.ClientEmail, PrivateKey: []byte(f.PrivateKey), Method: method,
		Expires: expires, ContentType: ct, Headers: headers, QueryParameters: q,
		Scheme: storage.SigningSchemeV4, Style: storage.PathStyle(),
	})
	if err != nil {
		t.Fatalf("storage.SignedURL: %v", err)
	}
	return u
}

// TestSDKAgreement signs the same requests with the official SDK and with
// the driver, at the SDK's signing time, and requires the same URL: the
// same path and the same query parameters, signature included (RSA PKCS
// #1 v1.5 signatures are deterministic).
func TestSDKAgreement(t *testing.T) {
	keyFile, _, pub := serviceAccount(t)
	be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "test-bucket", CredentialsJSON: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	v := &verifier{pub: pub, now: time.Now}
	for _, tc := range []struct {
		name    string
		method  string
		key     string
		ct      string
		size    int64
		headers []string
	}{
		{"GET", http.MethodGet, "datasets/train/shard-00042.tar", "", -1, nil},
		{"GET odd key", http.MethodGet, "dir/a b%2e+ü&x=~.bin", "", -1, nil},
		{"PUT bound", http.MethodPut, "up/file.bin", "text/plain; charset=utf-8", 1234, []string{"content-length:1234"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sdk := sdkSignedURL(t, keyFile, tc.method, tc.key, time.Now().Add(time.Hour), tc.ct, tc.headers, url.Values{gcsblob.GrantParam: {"grant-1"}})
			su, err := url.Parse(sdk)
			if err != nil {
				t.Fatal(err)
			}
			sq := su.Query()
			at, err := time.Parse("20060102T150405Z", sq.Get("X-Goog-Date"))
			if err != nil {
				t.Fatal(err)
			}
			secs, _ := strconv.Atoi(sq.Get("X-Goog-Expires"))
			mine, err := be.SignedURL(context.Background(), &driver.SignOptions{
				Method: tc.method, Bucket: "test-bucket", Key: tc.key, Now: at,
				Expires: at.Add(time.Duration(secs) * time.Second), Size: tc.size, ContentType: tc.ct, GrantID: "grant-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			mu, _ := url.Parse(mine.URL)
			if mu.EscapedPath() != su.EscapedPath() || mu.Host != su.Host {
				t.Errorf("driver URL addresses %s%s, SDK %s%s", mu.Host, mu.EscapedPath(), su.Host, su.EscapedPath())
			}
			mq := mu.Query()
			if len(mq) != len(sq) {
				t.Errorf("driver query %v\nSDK query %v", mq, sq)
			}
			for k := range sq {
				if mq.Get(k) != sq.Get(k) {
					t.Errorf("%s: driver %q, SDK %q", k, mq.Get(k), sq.Get(k))
				}
			}
			// The SDK's URL verifies with the test's verifier too.
			req, _ := http.NewRequest(tc.method, sdk, nil)
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.size >= 0 {
				req.ContentLength = tc.size
			}
			req.Host = su.Host
			if err := v.verify(req); err != nil {
				t.Errorf("the SDK's URL does not verify: %v", err)
			}
		})
	}
}
