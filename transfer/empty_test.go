package transfer_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/transfer"
)

// bindless is the local store made to refuse what Azure's SAS cannot
// bind: a size or SHA-256 on a single PUT (Unimplemented).
type bindless struct{ *fileblob.Store }

func (b bindless) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	if o.Method == http.MethodPut && o.PartNumber == 0 && (o.Size >= 0 || o.SHA256 != nil) {
		return nil, signet.Errorf(signet.Unimplemented, "this store cannot bind a single upload")
	}
	return b.Store.SignedURL(ctx, o)
}

// stuffPUT replaces the body of every PUT with one byte when on: someone
// writing through the unbound URL.
type stuffPUT struct {
	on   atomic.Bool
	base http.RoundTripper
}

func (s *stuffPUT) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.on.Load() && r.Method == http.MethodPut {
		r = r.Clone(r.Context())
		r.Body, r.ContentLength, r.GetBody = io.NopCloser(bytes.NewReader([]byte("x"))), 1, nil
	}
	return s.base.RoundTrip(r)
}

// TestUploadEmptyUnbindable: a store that cannot bind a single upload gets
// an empty object (which cannot be chunked) through an unbound PUT that is
// read back; bytes found there fail the upload with ChecksumMismatch.
func TestUploadEmptyUnbindable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ts := httptest.NewUnstartedServer(nil)
	keys, err := fileblob.LoadOrCreateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := fileblob.Open(filepath.Join(dir, "blobs"), fileblob.Options{BaseURL: "http://" + ts.Listener.Addr().String(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	backends := func(context.Context, *signet.Connector, map[string]string) (driver.Backend, error) {
		return bindless{blob}, nil
	}
	ts.Config.Handler = sighttp.NewServer(sighttp.Config{Store: db, Backends: backends, Blob: blob})
	ts.Start()
	defer ts.Close()
	token := seed(t, db, &signet.Connector{Team: "t", Backend: signet.BackendLocal, Bucket: "t"})
	c := sighttp.NewClient(ts.URL, token)
	stuff := &stuffPUT{base: http.DefaultTransport}
	o := &transfer.Options{HTTP: &http.Client{Transport: stuff}}

	res, err := transfer.Upload(ctx, c, "t", "empty", bytes.NewReader(nil), 0, o)
	if err != nil {
		t.Fatalf("Upload of an empty object: %v", err)
	}
	if res.Size != 0 || !res.Verified || res.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("result %+v, want size 0, verified, the empty SHA-256", res)
	}
	var got bytes.Buffer
	if _, err := transfer.Download(ctx, c, "t", "empty", &got, o); err != nil || got.Len() != 0 {
		t.Errorf("Download: %d bytes, %v; want the empty object", got.Len(), err)
	}

	stuff.on.Store(true)
	_, err = transfer.Upload(ctx, c, "t", "stuffed", bytes.NewReader(nil), 0, o)
	if signet.ErrorCode(err) != signet.ChecksumMismatch {
		t.Errorf("Upload of an empty object that the store holds as one byte: %v, want checksum_mismatch", err)
	}
}
