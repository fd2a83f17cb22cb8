package gcsblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// keylessCheck signs a GET, a bound PUT and a part URL with be and checks
// them with the verifier (public key pub) through a verifying store at
// be's endpoint, plus a tampered one.
func keylessCheck(t *testing.T, be *gcsblob.Backend, email string) {
	t.Helper()
	sign := func(o driver.SignOptions) *driver.SignedURL {
		t.Helper()
		return signTestBucket(t, be, o)
	}
	const key = "dir/a b+ü.bin"
	get := sign(driver.SignOptions{Method: http.MethodGet, Key: key, Size: -1})
	q, _ := url.ParseQuery(get.URL[strings.IndexByte(get.URL, '?')+1:])
	if q.Get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" || !strings.HasPrefix(q.Get("X-Goog-Credential"), email+"/") {
		t.Errorf("algorithm %q, credential %q; want GOOG4-RSA-SHA256 by %s", q.Get("X-Goog-Algorithm"), q.Get("X-Goog-Credential"), email)
	}
	if st := status(t, http.MethodGet, get.URL, nil, nil); st != http.StatusOK {
		t.Errorf("GET with a keyless URL answered %d, want 200 (the signature does not verify)", st)
	}
	body := []byte("0123456789")
	put := sign(driver.SignOptions{Method: http.MethodPut, Key: key, Size: 10, ContentType: "text/plain"})
	if st := status(t, http.MethodPut, put.URL, put.Headers, body); st != http.StatusOK {
		t.Errorf("PUT with a keyless URL answered %d, want 200", st)
	}
	if st := status(t, http.MethodPut, put.URL, put.Headers, append(body, 'x')); st != http.StatusForbidden {
		t.Errorf("PUT of a longer body with a keyless URL answered %d, want 403", st)
	}
	part := sign(driver.SignOptions{Method: http.MethodPut, Key: key, Size: 10, UploadID: "upload-1", PartNumber: 2})
	if st := status(t, http.MethodPut, part.URL, part.Headers, body); st != http.StatusOK {
		t.Errorf("PUT of a part with a keyless URL answered %d, want 200", st)
	}
	if st := status(t, http.MethodGet, flipSignature(get.URL), nil, nil); st != http.StatusForbidden {
		t.Errorf("GET with a flipped signature answered %d, want 403", st)
	}
}

// TestGCSKeyless signs URLs and control-plane requests without a key, through
// signBlob (see signBlobServer), and checks the credential chain, the
// shortened expiry and the error codes.
func TestGCSKeyless(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const email = "signer@test-project.iam.gserviceaccount.com"
	v := &verifier{pub: &key.PublicKey, now: time.Now}
	store := verifyingStore(t, v)
	// openKeyless opens the driver for bucket at endpoint without a key:
	// it signs as email through iamURL, with token as the caller's
	// access token.
	openKeyless := func(t *testing.T, bucket, endpoint, iamURL, token string) *gcsblob.Backend {
		t.Helper()
		be, err := gcsblob.Open(context.Background(), gcsblob.Config{
			Bucket: bucket, Endpoint: endpoint, ServiceAccount: email,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), IAMEndpoint: iamURL,
		})
		if err != nil {
			t.Fatal(err)
		}
		return be
	}

	t.Run("ServiceAccountAndTokenSource", func(t *testing.T) {
		iam := testpeer.StartSignBlob(t, key, email, "token-1")
		be := openKeyless(t, "test-bucket", store.URL, iam.URL, "token-1")
		keylessCheck(t, be, email)
		if n := iam.Calls.Load(); n != 3 {
			t.Errorf("%d signBlob calls for 3 URLs, want one each", n)
		}
	})

	t.Run("WorkloadIdentity", func(t *testing.T) {
		// No service account, no token source, no key file: the
		// metadata server names the account and hands out the token, as
		// on GCE, GKE with workload identity, or Cloud Run.
		testpeer.NoGoogleCredentials(t)
		md := testpeer.GCEMetadata(t, email, "metadata-token")
		t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))
		iam := testpeer.StartSignBlob(t, key, email, "metadata-token")
		be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "test-bucket", Endpoint: store.URL, IAMEndpoint: iam.URL})
		if err != nil {
			t.Fatal(err)
		}
		keylessCheck(t, be, email)
		if iam.Calls.Load() == 0 {
			t.Error("no signBlob call was made")
		}
	})

	t.Run("CredentialsFile", func(t *testing.T) {
		// GOOGLE_APPLICATION_CREDENTIALS names a service account key
		// whose token endpoint is the test's: the caller's token comes
		// from the standard chain (a JWT exchanged for a token).
		testpeer.NoGoogleCredentials(t)
		keyFile, _, _ := serviceAccount(t)
		var tokens atomic.Int64
		tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"file-token","expires_in":3600,"token_type":"Bearer"}`)
		}))
		t.Cleanup(tokenSrv.Close)
		var f map[string]any
		json.Unmarshal(keyFile, &f)
		f["token_uri"] = tokenSrv.URL
		data, _ := json.Marshal(f)
		path := filepath.Join(t.TempDir(), "adc.json")
		os.WriteFile(path, data, 0o600)
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)

		iam := testpeer.StartSignBlob(t, key, email, "file-token")
		be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "test-bucket", Endpoint: store.URL, ServiceAccount: email, IAMEndpoint: iam.URL})
		if err != nil {
			t.Fatal(err)
		}
		keylessCheck(t, be, email)
		if n := tokens.Load(); n != 1 {
			t.Errorf("%d tokens fetched for 3 URLs, want 1 (the token is reused)", n)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		iam := testpeer.StartSignBlob(t, key, email, "t")
		be := openKeyless(t, "test-bucket", store.URL, iam.URL, "t")
		now := time.Now()
		for _, tc := range []struct {
			asked, want time.Duration
		}{
			{time.Hour, time.Hour},
			{gcsblob.KeylessMaxExpiry, gcsblob.KeylessMaxExpiry},
			{7 * 24 * time.Hour, gcsblob.KeylessMaxExpiry},
		} {
			u, err := be.SignedURL(context.Background(), &driver.SignOptions{Method: http.MethodGet, Bucket: "test-bucket", Key: "k",
				Now: now, Expires: now.Truncate(time.Second).Add(tc.asked), Size: -1})
			if err != nil {
				t.Fatal(err)
			}
			q, _ := url.ParseQuery(u.URL[strings.IndexByte(u.URL, '?')+1:])
			wantSecs := fmt.Sprint(int64(tc.want / time.Second))
			if q.Get("X-Goog-Expires") != wantSecs || !u.Expires.Equal(now.Truncate(time.Second).Add(tc.want)) {
				t.Errorf("asked %v: X-Goog-Expires %s, Expires %v; want %s and %v", tc.asked, q.Get("X-Goog-Expires"), u.Expires, wantSecs, now.Truncate(time.Second).Add(tc.want))
			}
			req, _ := http.NewRequest(http.MethodGet, u.URL, nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("asked %v: the URL does not verify", tc.asked)
			}
		}
	})

	t.Run("Multipart", func(t *testing.T) {
		// signet's own XML API calls are signed through signBlob too.
		iam := testpeer.StartSignBlob(t, key, email, "t")
		mpu := &xmlMPU{v: v, uploads: map[string]*mpUpload{}, objects: map[string]*mpObject{}, pageSize: 10}
		srv := httptest.NewServer(mpu)
		t.Cleanup(srv.Close)
		be := openKeyless(t, "b-1", srv.URL, iam.URL, "t")
		b := storage.Open(be, &signet.Connector{Backend: signet.BackendGCS, Bucket: "b-1"})
		ctx := context.Background()
		data := []byte("keyless chunked upload")
		id, err := b.CreateMultipart(ctx, "k.bin", &driver.MultipartOptions{Size: int64(len(data)), PartSize: int64(len(data))})
		if err != nil {
			t.Fatalf("CreateMultipart: %v", err)
		}
		now := time.Now()
		u, err := b.SignedURL(ctx, "k.bin", &driver.SignOptions{Method: http.MethodPut, Now: now,
			Expires: now.Truncate(time.Second).Add(time.Hour), Size: int64(len(data)), UploadID: id, PartNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(u.Method, u.URL, bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("part PUT: %v %v", resp, err)
		}
		resp.Body.Close()
		parts, err := b.ListParts(ctx, "k.bin", id)
		if err != nil {
			t.Fatalf("ListParts: %v", err)
		}
		sum := sha256.Sum256(data)
		if err := b.CompleteMultipart(ctx, "k.bin", id, parts, sum[:]); err != nil {
			t.Fatalf("CompleteMultipart: %v", err)
		}
		if o := mpu.objects["k.bin"]; o == nil || !bytes.Equal(o.data, data) {
			t.Error("the upload was not assembled")
		}
	})

	t.Run("Errors", func(t *testing.T) {
		iam := testpeer.StartSignBlob(t, key, email, "right-token")
		open := func(token string) *gcsblob.Backend {
			return openKeyless(t, "test-bucket", store.URL, iam.URL, token)
		}
		signErr := func(be *gcsblob.Backend) error {
			now := time.Now()
			_, err := be.SignedURL(context.Background(), &driver.SignOptions{Method: http.MethodGet, Bucket: "test-bucket", Key: "k",
				Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1})
			if err != nil && strings.Contains(err.Error(), "right-token") || err != nil && strings.Contains(err.Error(), "wrong-token") {
				t.Errorf("the error quotes the caller's token: %v", err)
			}
			return err
		}
		good := open("right-token")
		for _, tc := range []struct {
			status int
			code   signet.Code
		}{
			{http.StatusForbidden, signet.PermissionDenied},
			{http.StatusNotFound, signet.PermissionDenied},
			{http.StatusTooManyRequests, signet.Unavailable},
			{http.StatusInternalServerError, signet.Unavailable},
			{http.StatusServiceUnavailable, signet.Unavailable},
			{http.StatusBadRequest, signet.Invalid},
		} {
			iam.Fail.Store(int64(tc.status))
			wantCode(t, fmt.Sprintf("signBlob answering %d", tc.status), signErr(good), tc.code)
		}
		iam.Fail.Store(0)
		wantCode(t, "a token signBlob refuses (401)", signErr(open("wrong-token")), signet.PermissionDenied)
		iam.Garbage.Store(true)
		wantCode(t, "an unusable signedBlob", signErr(good), signet.Internal)
		iam.Garbage.Store(false)
		if err := signErr(good); err != nil {
			t.Errorf("signing after the failures: %v", err)
		}

		// The control plane answers the same codes.
		iam.Fail.Store(http.StatusForbidden)
		_, err := good.CreateMultipart(context.Background(), "test-bucket", "k", &driver.MultipartOptions{Size: 1, PartSize: 1})
		wantCode(t, "CreateMultipart when signBlob refuses", err, signet.PermissionDenied)
		iam.Fail.Store(0)

		// IAM unreachable.
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		be, _ := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "test-bucket", ServiceAccount: email,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), IAMEndpoint: closed.URL})
		wantCode(t, "IAM unreachable", signErr(be), signet.Unavailable)

		// No service account given and no metadata server; no
		// credentials at all.
		testpeer.NoGoogleCredentials(t)
		t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(closed.URL, "http://"))
		be, _ = gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "test-bucket",
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), IAMEndpoint: iam.URL})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		now := time.Now()
		_, err = be.SignedURL(ctx, &driver.SignOptions{Method: http.MethodGet, Bucket: "test-bucket", Key: "k",
			Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1})
		wantCode(t, "no service account and no metadata server", err, signet.Unavailable)
	})
}
