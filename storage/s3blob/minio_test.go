package s3blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
	"github.com/signetdev/signet/storage/storagetest"
)

// One MinIO server serves every test of the package.
func TestMain(m *testing.M) { testpeer.Main(m) }

// minioBackend opens a Backend on a fresh bucket of a MinIO peer with the
// root user's keys; edit may change the configuration.
func minioBackend(t *testing.T, edit func(*s3blob.Config)) (*s3blob.Backend, *testpeer.MinIOPeer, s3blob.Config) {
	t.Helper()
	peer := testpeer.MinIO(t)
	cfg := s3blob.Config{
		Bucket:          peer.Bucket(t),
		Region:          peer.Region,
		Endpoint:        peer.Endpoint,
		PathStyle:       true,
		AccessKeyID:     peer.AccessKeyID,
		SecretAccessKey: peer.SecretAccessKey,
	}
	if edit != nil {
		edit(&cfg)
	}
	b, err := s3blob.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b, peer, cfg
}

// sign signs method on key for 15 minutes; edit may change the options.
func sign(t *testing.T, b *s3blob.Backend, cfg s3blob.Config, method, key string, edit func(*driver.SignOptions)) *driver.SignedURL {
	t.Helper()
	u, err := signErr(b, cfg, method, key, edit)
	if err != nil {
		t.Fatalf("SignedURL %s %s: %v", method, key, err)
	}
	return u
}

func signErr(b *s3blob.Backend, cfg s3blob.Config, method, key string, edit func(*driver.SignOptions)) (*driver.SignedURL, error) {
	now := time.Now()
	o := &driver.SignOptions{
		Method: method, Bucket: cfg.Bucket, Key: key, Now: now,
		Expires: now.Truncate(time.Second).Add(15 * time.Minute), Size: -1, GrantID: "test-grant",
	}
	if edit != nil {
		edit(o)
	}
	return b.SignedURL(context.Background(), o)
}

// do sends a request with a plain client holding no credentials. Headers
// with an empty value are not sent; Content-Length comes from the body.
func do(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	return storagetest.Do(t, http.DefaultClient, method, rawURL, headers, body)
}

// The tests share the conformance suite's request and check helpers.
var (
	doWith      = storagetest.Do
	randomBytes = storagetest.RandomBytes
	wantCode    = storagetest.WantCode
)

// isAccessDenied reports a refusal with S3 error code AccessDenied: 403,
// or 400 where MinIO uses it for a missing signed header.
func isAccessDenied(status int, body []byte) bool {
	var e struct{ Code string }
	return (status == http.StatusForbidden || status == http.StatusBadRequest) &&
		xml.Unmarshal(body, &e) == nil && e.Code == "AccessDenied"
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestTamperRejected proves, before anything else, that MinIO verifies
// signatures: a flipped signature character, another key under the same
// signature and a changed expiry are all refused.
func TestTamperRejected(t *testing.T) {
	b, _, cfg := minioBackend(t, nil)
	put := sign(t, b, cfg, "PUT", "tamper/a", nil)
	if st, _, _ := do(t, "PUT", put.URL, put.Headers, []byte("a")); st != 200 {
		t.Fatalf("setup: PUT answered %d", st)
	}
	get := sign(t, b, cfg, "GET", "tamper/a", nil)
	if st, body, _ := do(t, "GET", get.URL, nil, nil); st != 200 || string(body) != "a" {
		t.Fatalf("setup: GET answered %d %q", st, body)
	}
	edits := map[string]func(u *url.URL){
		"flipped signature": func(u *url.URL) { setParam(u, "X-Amz-Signature", flip) },
		"other key":         func(u *url.URL) { u.Path = "/" + cfg.Bucket + "/tamper/b" },
		"longer expiry":     func(u *url.URL) { setParam(u, "X-Amz-Expires", func(string) string { return "3600" }) },
		"other grant":       func(u *url.URL) { setParam(u, s3blob.GrantParam, func(string) string { return "other" }) },
		"no grant":          func(u *url.URL) { delParam(u, s3blob.GrantParam) },
	}
	for name, edit := range edits {
		u, _ := url.Parse(get.URL)
		edit(u)
		if st, _, _ := do(t, "GET", u.String(), nil, nil); st != http.StatusForbidden {
			t.Fatalf("invalid environment: MinIO accepted a tampered URL (%s answered %d, want 403)", name, st)
		}
	}
}

func flip(s string) string {
	if s[0] == 'a' {
		return "b" + s[1:]
	}
	return "a" + s[1:]
}

// setParam edits one query parameter, keeping the order of the others.
func setParam(u *url.URL, name string, edit func(string) string) {
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		if k, v, _ := strings.Cut(p, "="); k == name {
			parts[i] = k + "=" + edit(v)
		}
	}
	u.RawQuery = strings.Join(parts, "&")
}

func delParam(u *url.URL, name string) {
	var keep []string
	for _, p := range strings.Split(u.RawQuery, "&") {
		if k, _, _ := strings.Cut(p, "="); k != name {
			keep = append(keep, p)
		}
	}
	u.RawQuery = strings.Join(keep, "&")
}

// TestConformance runs the storage conformance suite against MinIO.
// MinIO enforces content type, length and x-amz-checksum-sha256 on
// presigned PUTs (TestEnforcement shows each); S3 URLs cannot carry a
// client network.
func TestConformance(t *testing.T) {
	b, _, cfg := minioBackend(t, nil)
	storagetest.Run(t, &storagetest.Harness{
		Client:            http.DefaultClient,
		Backend:           b,
		Name:              signet.BackendS3,
		Bucket:            cfg.Bucket,
		Multipart:         true,
		BindsContentType:  true,
		BindsSize:         true,
		BindsChecksum:     true,
		BindsClientPrefix: false,
	})
}

// TestConformanceRole runs the suite with least-privilege signing: a
// connector with a prefix that signs with an STS session whose policy
// allows that prefix only.
func TestConformanceRole(t *testing.T) {
	b, _, cfg := minioBackend(t, func(c *s3blob.Config) {
		c.Prefix = "team-a/"
		c.RoleARN = "arn:minio:iam:::role/signet-test"
	})
	storagetest.Run(t, &storagetest.Harness{
		Client:           http.DefaultClient,
		Backend:          b,
		Name:             signet.BackendS3,
		Bucket:           cfg.Bucket,
		Prefix:           cfg.Prefix,
		Multipart:        true,
		BindsContentType: true,
		BindsSize:        true,
		BindsChecksum:    true,
	})
}

// TestEnforcement shows, request by request, what MinIO refuses.
func TestEnforcement(t *testing.T) {
	b, peer, cfg := minioBackend(t, nil)
	body := randomBytes(1000)
	sum := sha256.Sum256(body)

	t.Run("ErrWrongSecret", func(t *testing.T) {
		wrong, err := s3blob.Open(context.Background(), s3blob.Config{
			Bucket: cfg.Bucket, Endpoint: cfg.Endpoint, PathStyle: true,
			AccessKeyID: peer.AccessKeyID, SecretAccessKey: peer.SecretAccessKey + "x",
		})
		if err != nil {
			t.Fatal(err)
		}
		u := sign(t, wrong, cfg, "PUT", "wrong-secret", nil)
		if st, _, _ := do(t, "PUT", u.URL, u.Headers, body); st != http.StatusForbidden {
			t.Errorf("PUT signed with a wrong secret answered %d, want 403", st)
		}
		_, err = wrong.CreateMultipart(context.Background(), cfg.Bucket, "wrong-secret", &driver.MultipartOptions{Size: 1, PartSize: 1})
		wantCode(t, "CreateMultipart with a wrong secret", err, signet.PermissionDenied)
		if err != nil && strings.Contains(err.Error(), peer.SecretAccessKey) {
			t.Error("the error holds the secret key")
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		u := sign(t, b, cfg, "GET", "expired", func(o *driver.SignOptions) {
			o.Now = time.Now().Add(-2 * time.Minute)
			o.Expires = o.Now.Truncate(time.Second).Add(time.Minute)
		})
		if st, _, _ := do(t, "GET", u.URL, nil, nil); st != http.StatusForbidden {
			t.Errorf("GET with an expired URL answered %d, want 403", st)
		}
	})
	t.Run("ErrWrongMethod", func(t *testing.T) {
		u := sign(t, b, cfg, "GET", "method", nil)
		for _, m := range []string{"PUT", "DELETE"} {
			if st, _, _ := do(t, m, u.URL, nil, body); st != http.StatusForbidden {
				t.Errorf("%s with a GET URL answered %d, want 403", m, st)
			}
		}
		// MinIO takes POST on an object for a browser form upload and
		// refuses it as a bad request.
		if st, _, _ := do(t, "POST", u.URL, nil, body); st != http.StatusForbidden && st != http.StatusBadRequest {
			t.Errorf("POST with a GET URL answered %d, want 400 or 403", st)
		}
	})
	t.Run("ErrContentType", func(t *testing.T) {
		u := sign(t, b, cfg, "PUT", "ct", func(o *driver.SignOptions) { o.ContentType = "image/png" })
		for _, ct := range []string{"image/jpeg", "image/png; x=1"} {
			if st, rb, _ := do(t, "PUT", u.URL, map[string]string{"Content-Type": ct}, body); st != http.StatusForbidden {
				t.Errorf("PUT with Content-Type %q answered %d, want 403: %s", ct, st, rb)
			}
		}
		// Without the header: MinIO answers 400 AccessDenied (AWS: 403).
		if st, rb, _ := do(t, "PUT", u.URL, nil, body); !isAccessDenied(st, rb) {
			t.Errorf("PUT without Content-Type answered %d, want 400 or 403 AccessDenied: %s", st, rb)
		}
	})
	t.Run("ErrSize", func(t *testing.T) {
		u := sign(t, b, cfg, "PUT", "size", func(o *driver.SignOptions) { o.Size = int64(len(body)) })
		if u.Headers["Content-Length"] != "1000" {
			t.Errorf("headers %v, want Content-Length 1000", u.Headers)
		}
		for _, b := range [][]byte{append(bytes.Clone(body), 'x'), body[:len(body)-1], {}} {
			if st, _, _ := do(t, "PUT", u.URL, u.Headers, b); st != http.StatusForbidden {
				t.Errorf("PUT of %d bytes answered %d, want 403", len(b), st)
			}
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		u := sign(t, b, cfg, "PUT", "checksum", func(o *driver.SignOptions) { o.SHA256 = sum[:] })
		other := bytes.Clone(body)
		other[0] ^= 1
		if st, _, _ := do(t, "PUT", u.URL, u.Headers, other); st != http.StatusBadRequest {
			t.Errorf("PUT of a body with another SHA-256 answered %d, want 400 (BadDigest)", st)
		}
		hdr := map[string]string{"x-amz-checksum-sha256": ""}
		if st, rb, _ := do(t, "PUT", u.URL, hdr, body); !isAccessDenied(st, rb) {
			t.Errorf("PUT without the signed checksum header answered %d, want 400 or 403 AccessDenied: %s", st, rb)
		}
		if st, _, _ := do(t, "PUT", u.URL, u.Headers, body); st != http.StatusOK {
			t.Errorf("PUT of the signed body answered %d, want 200", st)
		}
	})
	t.Run("GrantParam", func(t *testing.T) {
		// MinIO verifies unknown query parameters like any other: the
		// grant is signed (TestTamperRejected) and accepted.
		u := sign(t, b, cfg, "GET", "checksum", nil)
		if !strings.Contains(u.URL, s3blob.GrantParam+"=test-grant") {
			t.Errorf("URL does not carry the grant id")
		}
		if st, _, _ := do(t, "GET", u.URL, nil, nil); st != http.StatusOK {
			t.Errorf("GET with a signed grant parameter answered %d, want 200", st)
		}
		// A parameter added after signing is refused.
		if st, _, _ := do(t, "GET", u.URL+"&extra=1", nil, nil); st != http.StatusForbidden {
			t.Errorf("GET with an unsigned extra parameter answered %d, want 403", st)
		}
	})
	t.Run("ErrOutsidePrefix", func(t *testing.T) {
		pb, err := s3blob.Open(context.Background(), s3blob.Config{
			Bucket: cfg.Bucket, Prefix: "team/", Endpoint: cfg.Endpoint, PathStyle: true,
			AccessKeyID: peer.AccessKeyID, SecretAccessKey: peer.SecretAccessKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"other/x", "team", "team/", "teamx/y"} {
			_, err := signErr(pb, cfg, "GET", key, nil)
			wantCode(t, "signing "+key+" outside the prefix", err, signet.PermissionDenied)
		}
		_, err = signErr(pb, s3blob.Config{Bucket: "other-bucket"}, "GET", "team/x", nil)
		wantCode(t, "signing for another bucket", err, signet.PermissionDenied)
		_, err = pb.CreateMultipart(context.Background(), cfg.Bucket, "other/x", &driver.MultipartOptions{Size: 1, PartSize: 1})
		wantCode(t, "CreateMultipart outside the prefix", err, signet.PermissionDenied)
		// Through the portable layer no key can leave the team's space.
		bk := storage.Open(pb, &signet.Connector{Backend: "s3", Bucket: cfg.Bucket, Prefix: "team/"})
		for _, key := range []string{"../other/x", "/x", "a/../../x"} {
			_, err := bk.SignedURL(context.Background(), key, &driver.SignOptions{Method: "GET", Now: time.Now(), Expires: time.Now().Truncate(time.Second).Add(time.Minute), Size: -1})
			wantCode(t, "portable layer, key "+key, err, signet.InvalidKey)
		}
	})
	t.Run("ErrClientPrefix", func(t *testing.T) {
		_, err := signErr(b, cfg, "GET", "x", func(o *driver.SignOptions) {
			o.ClientPrefix = netipPrefix("10.0.0.0/8")
		})
		wantCode(t, "signing a client network", err, signet.Unimplemented)
	})
	t.Run("ErrUnreachable", func(t *testing.T) {
		down, err := s3blob.Open(context.Background(), s3blob.Config{
			Bucket: cfg.Bucket, Endpoint: "http://127.0.0.1:1", PathStyle: true,
			AccessKeyID: peer.AccessKeyID, SecretAccessKey: peer.SecretAccessKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = down.ListParts(context.Background(), cfg.Bucket, "x", "id")
		wantCode(t, "ListParts on a closed port", err, signet.Unavailable)
	})
}

// TestMultipartLarge uploads 20 MiB and more in 3 parts through part
// URLs, resumes from ListParts (paged two parts at a time), completes
// with a verified SHA-256 and downloads the same bytes.
func TestMultipartLarge(t *testing.T) {
	b, peer, cfg := minioBackend(t, nil)
	s3blob.SetListPageSize(b, 2)
	ctx := context.Background()
	key := "large/model.bin"
	const partSize = 8 << 20
	data := randomBytes(20<<20 + 12345)
	sum := sha256.Sum256(data)
	ps, count, err := storage.PlanParts(int64(len(data)), partSize)
	if err != nil || count != 3 {
		t.Fatalf("PlanParts: %d parts, %v", count, err)
	}
	id, err := b.CreateMultipart(ctx, cfg.Bucket, key, &driver.MultipartOptions{
		ContentType: "application/octet-stream", Size: int64(len(data)), PartSize: ps, SHA256: sum[:],
	})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	part := func(n int) []byte {
		off := int64(n-1) * ps
		return data[off : off+storage.PartSize(int64(len(data)), ps, n)]
	}
	upload := func(n int) string {
		u := sign(t, b, cfg, "PUT", key, func(o *driver.SignOptions) {
			o.UploadID, o.PartNumber, o.Size = id, n, int64(len(part(n)))
		})
		st, _, h := do(t, "PUT", u.URL, u.Headers, part(n))
		if st != http.StatusOK || h.Get("ETag") == "" {
			t.Fatalf("PUT part %d answered %d", n, st)
		}
		return h.Get("ETag")
	}
	// Parts 1 and 3 first, as if the client crashed before part 2.
	var wg sync.WaitGroup
	etags := map[int]string{}
	var mu sync.Mutex
	for _, n := range []int{3, 1} {
		wg.Go(func() {
			e := upload(n)
			mu.Lock()
			etags[n] = e
			mu.Unlock()
		})
	}
	wg.Wait()
	held, err := b.ListParts(ctx, cfg.Bucket, key, id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if len(held) != 2 || held[0].Number != 1 || held[1].Number != 3 || held[0].ETag != etags[1] || held[1].Size != int64(len(part(3))) {
		t.Fatalf("ListParts = %+v, want parts 1 and 3", held)
	}
	// A part uploaded with a body of the wrong size is refused.
	u := sign(t, b, cfg, "PUT", key, func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.Size = id, 2, ps })
	if st, _, _ := do(t, "PUT", u.URL, u.Headers, part(2)[:ps-1]); st != http.StatusForbidden {
		t.Errorf("PUT of a short part answered %d, want 403", st)
	}
	// Resume: upload what is missing.
	etags[2] = upload(2)
	held, err = b.ListParts(ctx, cfg.Bucket, key, id)
	if err != nil || len(held) != 3 {
		t.Fatalf("ListParts after resume: %+v, %v", held, err)
	}
	parts := make([]driver.Part, 3)
	for i := range parts {
		n := i + 1
		parts[i] = driver.Part{Number: n, ETag: etags[n], Size: int64(len(part(n)))}
	}
	// The planned sizes are checked.
	bad := append([]driver.Part(nil), parts...)
	bad[2].Size++
	wantCode(t, "CompleteMultipart with a wrong part size", b.CompleteMultipart(ctx, cfg.Bucket, key, id, bad, sum[:]), signet.Invalid)
	if err := b.CompleteMultipart(ctx, cfg.Bucket, key, id, parts, sum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	get := sign(t, b, cfg, "GET", key, nil)
	st, got, h := do(t, "GET", get.URL, nil, nil)
	if st != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET answered %d with %d bytes, want 200 with the %d bytes uploaded", st, len(got), len(data))
	}
	if h.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	// Nothing of the upload is left.
	out, err := peer.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(cfg.Bucket)})
	if err != nil || len(out.Uploads) != 0 {
		t.Errorf("ListMultipartUploads: %d uploads, %v; want none", len(out.Uploads), err)
	}
}

// TestAbortLeavesNothing aborts an upload with parts and checks the store
// keeps neither the upload nor an object.
func TestAbortLeavesNothing(t *testing.T) {
	b, peer, cfg := minioBackend(t, nil)
	ctx := context.Background()
	key := "abort/x"
	id, err := b.CreateMultipart(ctx, cfg.Bucket, key, &driver.MultipartOptions{Size: 10, PartSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	u := sign(t, b, cfg, "PUT", key, func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.Size = id, 1, 10 })
	if st, _, _ := do(t, "PUT", u.URL, u.Headers, make([]byte, 10)); st != 200 {
		t.Fatalf("PUT part answered %d", st)
	}
	if err := b.AbortMultipart(ctx, cfg.Bucket, key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	out, err := peer.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(cfg.Bucket)})
	if err != nil || len(out.Uploads) != 0 {
		t.Errorf("ListMultipartUploads after abort: %d uploads, %v; want none", len(out.Uploads), err)
	}
	objs, err := peer.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(cfg.Bucket)})
	if err != nil || len(objs.Contents) != 0 {
		t.Errorf("ListObjectsV2 after abort: %d objects, %v; want none", len(objs.Contents), err)
	}
	wantCode(t, "AbortMultipart twice", b.AbortMultipart(ctx, cfg.Bucket, key, id), signet.NotFound)
}

// TestAssumeRole signs with an STS session scoped by the session policy:
// URLs carry the session token and work below the prefix; a URL signed
// with the same session for another prefix is refused by the store.
func TestAssumeRole(t *testing.T) {
	b, peer, cfg := minioBackend(t, func(c *s3blob.Config) {
		c.Prefix = "ml/"
		c.RoleARN = "arn:minio:iam:::role/signet-test"
		c.RoleDuration = 15 * time.Minute
	})
	put := sign(t, b, cfg, "PUT", "ml/x", nil)
	q, _ := url.ParseQuery(put.URL[strings.IndexByte(put.URL, '?')+1:])
	token := q.Get("X-Amz-Security-Token")
	if token == "" || strings.HasPrefix(q.Get("X-Amz-Credential"), peer.AccessKeyID+"/") {
		t.Fatalf("role URL does not carry a session token or signs with the root key")
	}
	if st, _, _ := do(t, "PUT", put.URL, put.Headers, []byte("x")); st != 200 {
		t.Errorf("PUT below the prefix answered %d, want 200", st)
	}
	get := sign(t, b, cfg, "GET", "ml/x", nil)
	if st, body, _ := do(t, "GET", get.URL, nil, nil); st != 200 || string(body) != "x" {
		t.Errorf("GET below the prefix answered %d", st)
	}
	// The role's URLs die with the session, and say so.
	long := sign(t, b, cfg, "GET", "ml/x", func(o *driver.SignOptions) { o.Expires = o.Now.Truncate(time.Second).Add(time.Hour) })
	if left := time.Until(long.Expires); left > 15*time.Minute || left < 10*time.Minute {
		t.Errorf("URL asked for 1h with a 15 min session expires in %s, want the session's expiry", left)
	}

	// The same session's keys, used for another prefix: the store refuses.
	// (The backend itself refuses to sign there, so sign with the keys
	// directly, as a bug in signet would.)
	creds := sessionCredentials(t, peer, cfg)
	leak, err := s3blob.Open(context.Background(), s3blob.Config{
		Bucket: cfg.Bucket, Endpoint: cfg.Endpoint, PathStyle: true,
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
		SessionExpires: creds.Expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"other/x", "ml2/x", "mlx"} {
		u := sign(t, leak, cfg, "PUT", key, nil)
		if st, _, _ := do(t, "PUT", u.URL, u.Headers, []byte("x")); st != http.StatusForbidden {
			t.Errorf("PUT of %s with the session's keys answered %d, want 403", key, st)
		}
	}
	u := sign(t, leak, cfg, "GET", "ml/x", nil)
	if st, _, _ := do(t, "GET", u.URL, nil, nil); st != http.StatusOK {
		t.Errorf("GET of ml/x with the session's keys answered %d, want 200", st)
	}
}

// TestRoleDuration: RoleDuration sets the session length asked of STS, so
// a longer one lets URLs live longer; the default session (1 h) cuts a 3 h
// URL to 1 h.
func TestRoleDuration(t *testing.T) {
	for _, c := range []struct {
		duration, want time.Duration
	}{{0, s3blob.DefaultRoleDuration}, {2 * time.Hour, 2 * time.Hour}} {
		b, _, cfg := minioBackend(t, func(cfg *s3blob.Config) {
			cfg.Prefix = "ml/"
			cfg.RoleARN = "arn:minio:iam:::role/signet-test"
			cfg.RoleDuration = c.duration
		})
		put := sign(t, b, cfg, "PUT", "ml/long", nil)
		if st, _, _ := do(t, "PUT", put.URL, put.Headers, []byte("x")); st != 200 {
			t.Fatalf("RoleDuration %s: PUT answered %d", c.duration, st)
		}
		u := sign(t, b, cfg, "GET", "ml/long", func(o *driver.SignOptions) { o.Expires = o.Now.Truncate(time.Second).Add(3 * time.Hour) })
		if left := time.Until(u.Expires); left > c.want || left < c.want-5*time.Minute {
			t.Errorf("RoleDuration %s: a URL asked for 3 h expires in %s, want the session's %s", c.duration, left.Round(time.Second), c.want)
		}
		if st, body, _ := do(t, "GET", u.URL, nil, nil); st != 200 || string(body) != "x" {
			t.Errorf("RoleDuration %s: GET answered %d", c.duration, st)
		}
	}
}

// sessionCredentials assumes a role with the session policy Open uses.
func sessionCredentials(t *testing.T, peer *testpeer.MinIOPeer, cfg s3blob.Config) aws.Credentials {
	t.Helper()
	c, err := s3blob.AssumeRoleForTest(context.Background(), cfg, peer.AccessKeyID, peer.SecretAccessKey)
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	return c
}

// TestKMS uploads with SSE-KMS through MinIO's built-in key.
func TestKMS(t *testing.T) {
	b, peer, cfg := minioBackend(t, func(c *s3blob.Config) { c.KMSKeyID = testpeer.MinIOKMSKeyID })
	ctx := context.Background()
	u := sign(t, b, cfg, "PUT", "kms/single", func(o *driver.SignOptions) { o.Size = 3 })
	if u.Headers["x-amz-server-side-encryption"] != "aws:kms" || u.Headers["x-amz-server-side-encryption-aws-kms-key-id"] != peer.KMSKeyID {
		t.Errorf("headers %v lack the SSE-KMS headers", u.Headers)
	}
	if st, rb, _ := do(t, "PUT", u.URL, nil, []byte("abc")); !isAccessDenied(st, rb) {
		t.Errorf("PUT without the SSE-KMS headers answered %d, want 400 or 403 AccessDenied", st)
	}
	other := map[string]string{"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "other-key"}
	if st, rb, _ := do(t, "PUT", u.URL, other, []byte("abc")); st != http.StatusForbidden {
		t.Errorf("PUT with another KMS key answered %d, want 403: %s", st, rb)
	}
	if st, body, _ := do(t, "PUT", u.URL, u.Headers, []byte("abc")); st != http.StatusOK {
		t.Fatalf("PUT with SSE-KMS answered %d: %s", st, body)
	}
	head, err := peer.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String("kms/single")})
	if err != nil || head.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Errorf("HeadObject: SSE %q, %v; want aws:kms", head.ServerSideEncryption, err)
	}
	get := sign(t, b, cfg, "GET", "kms/single", nil)
	if st, body, _ := do(t, "GET", get.URL, nil, nil); st != 200 || string(body) != "abc" {
		t.Errorf("GET answered %d %q", st, body)
	}

	id, err := b.CreateMultipart(ctx, cfg.Bucket, "kms/multi", &driver.MultipartOptions{Size: 5, PartSize: 5})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	pu := sign(t, b, cfg, "PUT", "kms/multi", func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.Size = id, 1, 5 })
	st, _, h := do(t, "PUT", pu.URL, pu.Headers, []byte("hello"))
	if st != 200 {
		t.Fatalf("PUT part answered %d", st)
	}
	sum := sha256.Sum256([]byte("hello"))
	if err := b.CompleteMultipart(ctx, cfg.Bucket, "kms/multi", id, []driver.Part{{Number: 1, ETag: h.Get("ETag"), Size: 5}}, sum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	head, err = peer.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String("kms/multi")})
	if err != nil || head.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Errorf("HeadObject of the multipart object: SSE %q, %v; want aws:kms", head.ServerSideEncryption, err)
	}
}
