package testpeer_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet/internal/testpeer"
)

func TestMain(m *testing.M) { testpeer.Main(m) }

// recorder is a testing.TB that records how a helper ends a test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	skipped  string
	failed   string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// run calls MinIO with a recorder, as a test would.
func run() *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testpeer.MinIO(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r
}

func TestMinIOAbsent(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-minio")
	t.Setenv(testpeer.MinIOEnv, missing)

	t.Run("Skip", func(t *testing.T) {
		t.Setenv(testpeer.RequireEnv, "")
		r := run()
		if r.failed != "" || !strings.Contains(r.skipped, "go install github.com/minio/minio@"+testpeer.MinIOVersion) || !strings.Contains(r.skipped, missing) {
			t.Errorf("skipped %q, failed %q; want a skip saying how to install MinIO", r.skipped, r.failed)
		}
	})
	t.Run("Require", func(t *testing.T) {
		t.Setenv(testpeer.RequireEnv, "require")
		r := run()
		if r.skipped != "" || !strings.Contains(r.failed, "go install github.com/minio/minio@"+testpeer.MinIOVersion) {
			t.Errorf("skipped %q, failed %q; want a failure when peers are required", r.skipped, r.failed)
		}
	})
}

func TestMinIO(t *testing.T) {
	p := testpeer.MinIO(t)
	if !strings.HasPrefix(p.Endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %s is not on 127.0.0.1", p.Endpoint)
	}
	resp, err := http.Get(p.Endpoint + "/minio/health/live")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	name := p.Bucket(t)
	out, err := p.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	found := false
	for _, b := range out.Buckets {
		found = found || aws.ToString(b.Name) == name
	}
	if !found {
		t.Errorf("bucket %s not listed", name)
	}
	// A second user shares the running server.
	if q := testpeer.MinIO(t); q != p {
		t.Error("a second MinIO call started another server")
	}
	// Anonymous requests are refused: the server checks credentials.
	resp, err = http.Get(p.Endpoint + "/" + name + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous listing answered %d, want 403", resp.StatusCode)
	}
}
