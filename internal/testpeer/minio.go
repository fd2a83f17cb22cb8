package testpeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// MinIOEnv names the environment variable that points to a minio binary.
const MinIOEnv = "SIGNET_MINIO_BIN"

// MinIOVersion is the MinIO release the S3 tests were proven against: the
// one .ci/run pins (SIGNET_MINIO_VERSION) and MinIOInstall names.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIOInstall says how to get MinIO; it is part of every skip message.
// GOTOOLCHAIN=auto lets go fetch the toolchain MinIO's go.mod asks for.
const MinIOInstall = "build it with `GOTOOLCHAIN=auto GOBIN=~/.cache/signet/bin go install github.com/minio/minio@" + MinIOVersion + "` " +
	"(the release CI pins; about 12 minutes on 2 cores; or run `SIGNET_MINIO_VERSION=" + MinIOVersion + " internal/testpeer/install.sh`), " +
	"put minio on PATH, or set " + MinIOEnv + " to a minio binary"

// MinIOKMSKeyID is the name of the KMS key the MinIO peer is started with
// (MINIO_KMS_SECRET_KEY), usable for SSE-KMS uploads.
const MinIOKMSKeyID = "signet-test-key"

// MinIOPeer is a running MinIO server on 127.0.0.1 with a fresh data
// directory. Its root user may do anything, including STS AssumeRole (any
// role ARN; the session policy alone limits the session). MinIO and
// StartMinIO return a server only once S3 and STS both answer and the
// server has proven that it verifies signatures (see checkTamper), so no
// test can pass against a store that accepts any URL.
type MinIOPeer struct {
	// Endpoint is the server's base URL, http://127.0.0.1:<port>.
	Endpoint string
	// AccessKeyID and SecretAccessKey are the root user's credentials.
	AccessKeyID     string
	SecretAccessKey string
	// Region is the server's region (us-east-1).
	Region string
	// KMSKeyID names the server's built-in KMS key.
	KMSKeyID string

	process
}

// The MinIO server is shared by the tests of one test binary: each call of
// MinIO takes a reference and its tb.Cleanup drops it; the last drop stops
// the server, unless the package's TestMain called Main, which keeps it
// until every test has run.
var minio struct {
	mu    sync.Mutex
	peer  *MinIOPeer
	users int
	kept  bool
}

// MinIO returns a running MinIO server, started on first use, and releases
// it when tb ends. Each test should use its own bucket (see Bucket).
//
// The binary is $SIGNET_MINIO_BIN when that is set, else
// ~/.cache/signet/bin/minio, else minio on PATH. When there is none, MinIO
// skips tb with a message that says how to build it, or fails tb when
// SIGNET_TEST_PEERS=require. A binary that does not start fails tb.
func MinIO(tb testing.TB) *MinIOPeer {
	tb.Helper()
	bin := needBinary(tb, MinIOEnv, "minio", MinIOInstall)
	minio.mu.Lock()
	defer minio.mu.Unlock()
	if minio.peer == nil {
		p, err := startMinIO(bin)
		if err != nil {
			tb.Fatalf("testpeer: starting MinIO (%s): %v", bin, err)
		}
		minio.peer = p
	}
	minio.users++
	p := minio.peer
	tb.Cleanup(func() {
		minio.mu.Lock()
		defer minio.mu.Unlock()
		minio.users--
		if minio.users == 0 && !minio.kept && minio.peer == p {
			p.stop()
			minio.peer = nil
		}
	})
	return p
}

// Main runs the tests of a package that uses MinIO with one server shared
// by all of them, stopped after the last. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testpeer.Main(m) }
func Main(m *testing.M) {
	minio.mu.Lock()
	minio.kept = true
	minio.mu.Unlock()
	code := m.Run()
	minio.mu.Lock()
	if minio.peer != nil {
		minio.peer.stop()
		minio.peer = nil
	}
	minio.mu.Unlock()
	os.Exit(code)
}

// StartMinIO starts a MinIO server of tb's own, not shared with other
// tests, with env added to its environment (MINIO_* settings such as an
// audit webhook, as KEY=VALUE), and stops it when tb ends. It finds the
// binary, skips and fails as MinIO does.
func StartMinIO(tb testing.TB, env ...string) *MinIOPeer {
	tb.Helper()
	bin := needBinary(tb, MinIOEnv, "minio", MinIOInstall)
	p, err := startMinIO(bin, env...)
	if err != nil {
		tb.Fatalf("testpeer: starting MinIO (%s): %v", bin, err)
	}
	tb.Cleanup(p.stop)
	return p
}

// startMinIO starts a server, trying new ports when one was taken.
func startMinIO(bin string, env ...string) (*MinIOPeer, error) {
	var errs []error
	for range 3 {
		p, err := tryStartMinIO(bin, env)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, errTamper) {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryStartMinIO(bin string, env []string) (*MinIOPeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "signet-minio-")
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	kmsKey := make([]byte, 32)
	rand.Read(kmsKey)
	p := &MinIOPeer{
		Endpoint:        fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKeyID:     "signet-root",
		SecretAccessKey: hex.EncodeToString(secret),
		Region:          "us-east-1",
		KMSKeyID:        MinIOKMSKeyID,
		process:         newProcess(dir),
	}
	cmd := exec.Command(bin, "server",
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort),
		filepath.Join(dir, "data"))
	// Inherited MINIO_* settings would change what is tested; drop them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"MINIO_ROOT_USER="+p.AccessKeyID,
		"MINIO_ROOT_PASSWORD="+p.SecretAccessKey,
		"MINIO_REGION="+p.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_KMS_SECRET_KEY="+MinIOKMSKeyID+":"+base64.StdEncoding.EncodeToString(kmsKey),
	)
	cmd.Env = append(cmd.Env, env...)
	if err := p.start(cmd); err != nil {
		return nil, err
	}
	if err := p.waitLive(60 * time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; server output:\n%s", err, p.logs.Tail(2000))
	}
	if err := p.waitSTS(60 * time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; server output:\n%s", err, p.logs.Tail(2000))
	}
	if err := p.checkTamper(); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// errTamper marks a server that accepts tampered URLs: starting it again
// cannot help.
var errTamper = errors.New("invalid environment: MinIO accepted a tampered pre-signed URL, so it does not verify signatures")

// checkTamper proves that the server verifies pre-signed URLs before any
// test uses it: through URLs signed by the SDK's presigner (s3.PresignClient),
// an untampered GET and PUT succeed, while a GET or PUT with a flipped
// signature character and a GET signed with a wrong secret are refused with
// 403, and the refused PUT writes nothing. It leaves nothing behind.
func (p *MinIOPeer) checkTamper() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := p.Client()
	bucket, key, body := RandomName("testpeer-tamper-"), "tamper-check", []byte("signed by the root user")
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("tamper check: creating a bucket: %w", err)
	}
	defer func() {
		for _, k := range []string{key, key + "-put"} {
			root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		}
		root.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	}()
	if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("tamper check: writing an object: %w", err)
	}
	presign := func(secret string) *s3.PresignClient {
		c := s3.New(root.Options(), func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(p.AccessKeyID, secret, "")
		})
		return s3.NewPresignClient(c, s3.WithPresignExpires(5*time.Minute))
	}
	good, wrong := presign(p.SecretAccessKey), presign("not-"+p.SecretAccessKey)
	get, err := good.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("tamper check: presigning: %w", err)
	}
	put, err := good.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + "-put")})
	if err != nil {
		return fmt.Errorf("tamper check: presigning: %w", err)
	}
	wrongGet, err := wrong.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("tamper check: presigning: %w", err)
	}
	send := func(method, rawURL string, h http.Header, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		for k, v := range h {
			if !strings.EqualFold(k, "Host") {
				req.Header[k] = v
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	for _, c := range []struct {
		what, method, url string
		h                 http.Header
	}{
		{"GET with a flipped signature character", http.MethodGet, flipSignature(get.URL), get.SignedHeader},
		{"GET signed with a wrong secret", http.MethodGet, wrongGet.URL, wrongGet.SignedHeader},
		{"PUT with a flipped signature character", http.MethodPut, flipSignature(put.URL), put.SignedHeader},
	} {
		st, _, err := send(c.method, c.url, c.h, []byte("tampered"))
		if err != nil {
			return fmt.Errorf("tamper check: %s: %w", c.what, err)
		}
		if st != http.StatusForbidden {
			return fmt.Errorf("%w (%s answered %d, want 403)", errTamper, c.what, st)
		}
	}
	if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + "-put")}); err == nil {
		return fmt.Errorf("%w (a PUT with a flipped signature character wrote the object)", errTamper)
	}
	// The untampered URLs work, so the refusals above were for the tampering.
	if st, got, err := send(http.MethodGet, get.URL, get.SignedHeader, nil); err != nil || st != http.StatusOK || !bytes.Equal(got, body) {
		return fmt.Errorf("tamper check: GET through an untampered URL answered %d (%v); want 200 and the object", st, err)
	}
	if st, _, err := send(http.MethodPut, put.URL, put.SignedHeader, body); err != nil || st != http.StatusOK {
		return fmt.Errorf("tamper check: PUT through an untampered URL answered %d (%v); want 200", st, err)
	}
	return nil
}

// flipSignature changes the first character of a URL's X-Amz-Signature.
func flipSignature(rawURL string) string {
	const param = "X-Amz-Signature="
	i := strings.Index(rawURL, param)
	if i < 0 || i+len(param) >= len(rawURL) {
		return rawURL + "&" + param + "0"
	}
	i += len(param)
	c := byte('0')
	if rawURL[i] == '0' {
		c = '1'
	}
	return rawURL[:i] + string(c) + rawURL[i+1:]
}

// waitSTS waits until STS answers: MinIO's IAM starts after the health
// endpoints report live ("Server not initialized").
func (p *MinIOPeer) waitSTS(timeout time.Duration) error {
	client := sts.New(sts.Options{
		Region:       p.Region,
		BaseEndpoint: aws.String(p.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(p.AccessKeyID, p.SecretAccessKey, ""),
	})
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = client.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String("arn:minio:iam:::role/testpeer"),
			RoleSessionName: aws.String("testpeer"),
			DurationSeconds: aws.Int32(900),
		})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("minio STS not ready after %s: %w", timeout, err)
}

// waitLive polls /minio/health/live until it answers 200.
func (p *MinIOPeer) waitLive(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("minio exited before it was ready")
		default:
		}
		resp, err := client.Get(p.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio was not live after %s", timeout)
}

// Client returns an S3 client with the root user's credentials, path
// style, for test setup and inspection.
func (p *MinIOPeer) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       p.Region,
		BaseEndpoint: aws.String(p.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(p.AccessKeyID, p.SecretAccessKey, ""),
		// MinIO accepts the SDK's checksums, but test setup needs none.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates bucket name and fails tb if it cannot.
func (p *MinIOPeer) CreateBucket(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("testpeer: creating bucket %s: %v", name, err)
	}
}

// Bucket creates a bucket with a fresh random name and returns the name.
func (p *MinIOPeer) Bucket(tb testing.TB) string {
	tb.Helper()
	name := RandomName("signet-test-")
	p.CreateBucket(tb, name)
	return name
}

// Logs returns the end of the server's output, for failure messages.
func (p *MinIOPeer) Logs() string { return p.logs.Tail(4000) }
