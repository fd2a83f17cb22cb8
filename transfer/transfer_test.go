package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/transfer"
)

const team = "t"

// env is a real signet server (SQLite metadata, the built-in local store)
// on httptest, with team "t" mapped to the local store and an instance
// admin's API client.
type env struct {
	c       *sighttp.Client
	blobDir string
	faults  *faultTransport
	// HTTP is a client for store URLs whose transport injects faults.
	HTTP *http.Client
	// clock is the server's and the store's clock.
	clock *clock
	// store counts what the store receives.
	store *storeMeter
}

// clock is real time moved forward by a settable offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// storeMeter wraps the local store's handler: it counts the body bytes
// that PUT requests delivered to the store, and the requests in progress.
type storeMeter struct {
	h        http.Handler
	received atomic.Int64
	active   atomic.Int64
}

func (m *storeMeter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		r.Body = &countingBody{r: r.Body, n: &m.received}
	}
	m.active.Add(1)
	defer m.active.Add(-1)
	m.h.ServeHTTP(w, r)
}

// idle waits until the store has finished every request it started, so
// that the parts it holds no longer change.
func (m *storeMeter) idle(tb testing.TB) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); m.active.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("the store is still handling requests after 5s")
		}
	}
}

type countingBody struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

// newEnv starts the server. It also checks, at cleanup, that no goroutine
// of package transfer is left running.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	tb.Cleanup(func() { checkNoLeaks(tb) })
	ctx := context.Background()
	dir := tb.TempDir()

	db, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		tb.Fatalf("opening database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })

	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	keys, err := fileblob.LoadOrCreateKeys(filepath.Join(dir, "local-store.keys"))
	if err != nil {
		tb.Fatalf("loading keys: %v", err)
	}
	blobDir := filepath.Join(dir, "blobs")
	clk := new(clock)
	blob, err := fileblob.Open(blobDir, fileblob.Options{BaseURL: base, Keys: keys, Now: clk.now})
	if err != nil {
		tb.Fatalf("opening local store: %v", err)
	}
	tb.Cleanup(func() { blob.Close() })
	backends := func(_ context.Context, c *signet.Connector, _ map[string]string) (driver.Backend, error) {
		if c.Backend != signet.BackendLocal {
			return nil, signet.Errorf(signet.Unimplemented, "backend %q is not available", c.Backend)
		}
		return blob, nil
	}
	meter := &storeMeter{h: blob}
	ts.Config.Handler = sighttp.NewServer(sighttp.Config{Store: db, Backends: backends, Blob: meter, Now: clk.now})
	ts.Start()
	tb.Cleanup(ts.Close)

	token := seed(tb, db, &signet.Connector{Team: team, Backend: signet.BackendLocal, Bucket: team})

	rt := http.DefaultTransport.(*http.Transport).Clone()
	rt.DisableCompression = true
	faults := &faultTransport{base: rt}
	tb.Cleanup(rt.CloseIdleConnections)
	return &env{
		c:       sighttp.NewClient(base, token),
		blobDir: blobDir,
		faults:  faults,
		HTTP:    &http.Client{Transport: faults},
		clock:   clk,
		store:   meter,
	}
}

// seed makes user alice, with an API key whose token it returns, an admin
// of conn's team, created with conn as its connector.
func seed(tb testing.TB, db signet.Store, conn *signet.Connector) string {
	tb.Helper()
	token, id, hash := signet.NewAPIKeyToken()
	err := db.Update(context.Background(), func(tx signet.Tx) error {
		if err := tx.CreateUser(&signet.User{Name: "alice", Admin: true}); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(&signet.APIKey{ID: id, User: "alice", Hash: hash}); err != nil {
			return err
		}
		if err := tx.CreateTeam(&signet.Team{Name: conn.Team}); err != nil {
			return err
		}
		if err := tx.SetMember(&signet.Member{Team: conn.Team, User: "alice", Role: signet.RoleAdmin}); err != nil {
			return err
		}
		return tx.SetConnector(conn)
	})
	if err != nil {
		tb.Fatalf("seeding the store: %v", err)
	}
	return token
}

// faultTransport passes requests to the real transport unless fault, given
// the request and how many requests came before it, answers instead.
type faultTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
	// fault returns a response or an error to answer with instead of
	// sending the request, or (nil, nil) to send it. It may also wrap the
	// real answer through after.
	fault func(req *http.Request) (*http.Response, error)
	after func(req *http.Request, resp *http.Response) *http.Response
	log   []string // method, part and Range of each request, and whether it was faked
}

func (f *faultTransport) set(fault func(*http.Request) (*http.Response, error), after func(*http.Request, *http.Response) *http.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.after, f.log = fault, after, nil
}

func (f *faultTransport) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fault, after := f.fault, f.after
	var resp *http.Response
	var err error
	if fault != nil {
		resp, err = fault(req)
	}
	faked := resp != nil || err != nil
	f.log = append(f.log, fmt.Sprintf("%s part=%s range=%q faked=%v", req.Method, req.URL.Query().Get("part"), req.Header.Get("Range"), faked))
	f.mu.Unlock()
	if faked {
		if req.Body != nil {
			req.Body.Close()
		}
		return resp, err
	}
	resp, err = f.base.RoundTrip(req)
	if err == nil && after != nil {
		resp = after(req, resp)
	}
	return resp, err
}

// answer is a response made up by the test, never sent by the store.
func answer(req *http.Request, status int) *http.Response {
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Body:          http.NoBody,
		ContentLength: 0,
		Request:       req,
	}
}

// isPart reports whether req is the PUT of part n.
func isPart(req *http.Request, n int) bool {
	return req.Method == http.MethodPut && req.URL.Query().Get("part") == fmt.Sprint(n)
}

// brokenBody fails with a reset after n bytes.
type brokenBody struct {
	r io.ReadCloser
	n int64
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errors.New("connection reset by test")
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

func (b *brokenBody) Close() error { return b.r.Close() }

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFile(tb testing.TB, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "src.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// download fetches key into memory.
func (e *env) download(t *testing.T, key string) []byte {
	t.Helper()
	var buf bytes.Buffer
	res, err := transfer.Download(context.Background(), e.c, team, key, &buf, nil)
	if err != nil {
		t.Fatalf("Download(%s): %v", key, err)
	}
	if res.Size != int64(buf.Len()) || res.SHA256 != sum(buf.Bytes()) || !res.Verified {
		t.Errorf("Download(%s) = size %d, sha256 %s, verified %v; got %d bytes with sha256 %s", key, res.Size, res.SHA256, res.Verified, buf.Len(), sum(buf.Bytes()))
	}
	return buf.Bytes()
}

// checkNoSecret fails the test if err's text quotes a signed URL.
func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{"sig=", "/blob/", "kid=", "grant="} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q: it quotes a signed URL", err, s)
		}
	}
}

// checkNoLeaks fails if a goroutine of package transfer is still running.
func checkNoLeaks(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "signet/transfer.") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("%d goroutines of package transfer left running:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("SinglePut", func(t *testing.T) {
		data := randomBytes(3<<20+17, 1)
		res, err := transfer.Upload(ctx, e.c, team, "single/a.bin", bytes.NewReader(data), int64(len(data)),
			&transfer.Options{ContentType: "application/x-test", HTTP: e.HTTP})
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		want := transfer.Result{Key: "single/a.bin", Size: int64(len(data)), SHA256: sum(data), Parts: 1, Verified: true}
		if *res != want {
			t.Errorf("Upload = %+v, want %+v", *res, want)
		}
		if got := e.download(t, "single/a.bin"); !bytes.Equal(got, data) {
			t.Errorf("downloaded %d bytes that differ from the %d uploaded", len(got), len(data))
		}
	})

	t.Run("Empty", func(t *testing.T) {
		res, err := transfer.Upload(ctx, e.c, team, "empty", bytes.NewReader(nil), 0, &transfer.Options{Threshold: -1})
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		if res.Size != 0 || res.SHA256 != sum(nil) || res.Parts != 1 {
			t.Errorf("Upload = %+v", res)
		}
		if got := e.download(t, "empty"); len(got) != 0 {
			t.Errorf("downloaded %d bytes, want 0", len(got))
		}
	})

	t.Run("Multipart", func(t *testing.T) {
		data := randomBytes(40<<20+12345, 2)
		src := writeFile(t, data)
		var calls, inCall atomic.Int32
		var mu sync.Mutex
		var last, total int64
		decreased := false
		o := &transfer.Options{
			PartSize: 5 << 20, Concurrency: 4, Threshold: 8 << 20, HTTP: e.HTTP,
			Progress: func(done, tot int64) {
				if inCall.Add(1) != 1 {
					t.Error("Progress called concurrently")
				}
				defer inCall.Add(-1)
				calls.Add(1)
				mu.Lock()
				defer mu.Unlock()
				if done < last {
					decreased = true
				}
				last, total = done, tot
			},
		}
		res, err := transfer.UploadFile(ctx, e.c, team, "big/model.bin", src, o)
		if err != nil {
			t.Fatalf("UploadFile: %v", err)
		}
		want := transfer.Result{Key: "big/model.bin", Size: int64(len(data)), SHA256: sum(data), Parts: 9, Verified: true}
		if *res != want {
			t.Errorf("UploadFile = %+v, want %+v", *res, want)
		}
		mu.Lock()
		if decreased || last != int64(len(data)) || total != int64(len(data)) || calls.Load() < 9 {
			t.Errorf("progress: %d calls, last (%d, %d), decreased %v; want it to end at (%d, %[5]d) without decreasing",
				calls.Load(), last, total, decreased, len(data))
		}
		mu.Unlock()

		dst := filepath.Join(t.TempDir(), "copy.bin")
		res, err = transfer.DownloadFile(ctx, e.c, team, "big/model.bin", dst,
			&transfer.Options{PartSize: 5 << 20, Threshold: 8 << 20, HTTP: e.HTTP})
		if err != nil {
			t.Fatalf("DownloadFile: %v", err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) || res.SHA256 != sum(data) || res.Size != int64(len(data)) || !res.Verified {
			t.Errorf("DownloadFile = %+v: %d bytes with sha256 %s; want %d verified bytes with sha256 %s", res, len(got), sum(got), len(data), sum(data))
		}
		if res.Parts != 9 {
			t.Errorf("DownloadFile moved %d ranges, want 9", res.Parts)
		}
		ranged := 0
		for _, r := range e.faults.requests() {
			if strings.Contains(r, `range="bytes=`) {
				ranged++
			}
		}
		if ranged != 8 {
			t.Errorf("DownloadFile sent %d ranged GETs, want 8", ranged)
		}
		if got := e.download(t, "big/model.bin"); !bytes.Equal(got, data) {
			t.Error("Download returned other bytes than uploaded")
		}
	})

	t.Run("Stream", func(t *testing.T) {
		for _, n := range []int{0, 1000, 11<<20 + 3} {
			data := randomBytes(n, 3)
			key := fmt.Sprintf("stream/%d", n)
			// A pipe: the size cannot be known in advance.
			pr, pw := io.Pipe()
			go func() {
				for b := data; len(b) > 0; b = b[min(len(b), 1<<16):] {
					pw.Write(b[:min(len(b), 1<<16)])
				}
				pw.Close()
			}()
			// PartSize without Threshold: objects above PartSize go in parts.
			res, err := transfer.UploadStream(ctx, e.c, team, key, pr, &transfer.Options{PartSize: 5 << 20})
			if err != nil {
				t.Fatalf("UploadStream(%d bytes): %v", n, err)
			}
			wantParts := max(1, (n+5<<20-1)/(5<<20))
			if res.Size != int64(n) || res.SHA256 != sum(data) || res.Parts != wantParts {
				t.Errorf("UploadStream(%d bytes) = %+v, want %d parts", n, res, wantParts)
			}
			if got := e.download(t, key); !bytes.Equal(got, data) {
				t.Errorf("stream of %d bytes: downloaded %d bytes that differ", n, len(got))
			}
		}
	})

	t.Run("ChecksumMismatch", func(t *testing.T) {
		for _, o := range []transfer.Options{{}, {Threshold: -1, PartSize: 5 << 20}} {
			data := randomBytes(11<<20, 4)
			r := &changingReader{data: data, after: int64(len(data))}
			_, err := transfer.Upload(ctx, e.c, team, "changed", r, int64(len(data)), &o)
			if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
				t.Errorf("Upload of data that changed after hashing (threshold %d): code %q (%v), want %q", o.Threshold, code, err, signet.ChecksumMismatch)
			}
			checkNoSecret(t, err)
			_, err = transfer.Download(ctx, e.c, team, "changed", io.Discard, nil)
			if code := signet.ErrorCode(err); code != signet.NotFound {
				t.Errorf("Download after a refused upload: code %q (%v), want %q", code, err, signet.NotFound)
			}
		}
	})

	t.Run("InvalidOptions", func(t *testing.T) {
		_, err := transfer.Upload(ctx, e.c, team, "x", bytes.NewReader(nil), 0, &transfer.Options{Concurrency: -1})
		if code := signet.ErrorCode(err); code != signet.Invalid {
			t.Errorf("Concurrency -1: code %q, want %q", code, signet.Invalid)
		}
	})
}

// changingReader returns data until after bytes have been read in total,
// then data with every byte inverted: the object changes between the
// hashing pass and the upload.
type changingReader struct {
	data  []byte
	after int64
	read  atomic.Int64
}

func (r *changingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if r.read.Add(int64(n)) > r.after {
		for i := range p[:n] {
			p[i] ^= 0xff
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestUploadPartRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := randomBytes(12<<20, 5)
	o := &transfer.Options{PartSize: 5 << 20, Threshold: -1, HTTP: e.HTTP}

	t.Run("Once", func(t *testing.T) {
		var mu sync.Mutex
		var part2 []string // URLs used for part 2
		refused := false
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if !isPart(req, 2) {
				return nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			part2 = append(part2, req.URL.String())
			if !refused {
				refused = true
				return answer(req, http.StatusForbidden), nil
			}
			return nil, nil
		}, nil)
		defer e.faults.set(nil, nil)
		res, err := transfer.Upload(ctx, e.c, team, "refused/once", bytes.NewReader(data), int64(len(data)), o)
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		if res.Parts != 3 || res.SHA256 != sum(data) {
			t.Errorf("Upload = %+v", res)
		}
		if len(part2) != 2 || part2[0] == part2[1] {
			t.Errorf("part 2 was sent %d times; want twice, the second time with a fresh URL", len(part2))
		}
		if got := e.download(t, "refused/once"); !bytes.Equal(got, data) {
			t.Error("downloaded bytes differ")
		}
	})

	t.Run("Always", func(t *testing.T) {
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if isPart(req, 2) {
				return answer(req, http.StatusForbidden), nil
			}
			return nil, nil
		}, nil)
		defer e.faults.set(nil, nil)
		_, err := transfer.Upload(ctx, e.c, team, "refused/always", bytes.NewReader(data), int64(len(data)), o)
		if code := signet.ErrorCode(err); code != signet.PermissionDenied {
			t.Fatalf("Upload: code %q (%v), want %q", code, err, signet.PermissionDenied)
		}
		checkNoSecret(t, err)
		if !strings.Contains(err.Error(), "part 2") {
			t.Errorf("error %q does not name part 2", err)
		}
		sent := 0
		for _, r := range e.faults.requests() {
			if strings.HasPrefix(r, "PUT part=2 ") {
				sent++
			}
		}
		if sent != 2 {
			t.Errorf("part 2 was tried %d times, want 2 (the URL, then one fresh URL)", sent)
		}

		e.checkAborted(t, "refused/always")
	})

	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		o := *o
		o.Progress = func(done, total int64) {
			if done > 6<<20 {
				cancel()
			}
		}
		_, err := transfer.Upload(ctx, e.c, team, "canceled", bytes.NewReader(data), int64(len(data)), &o)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Upload: %v, want context.Canceled", err)
		}
		e.checkAborted(t, "canceled")
	})
}

// checkAborted checks that the chunked upload of key was aborted: its state
// says so and the store holds none of its parts.
func (e *env) checkAborted(t *testing.T, key string) {
	t.Helper()
	ctx := context.Background()
	page, err := e.c.Audit(ctx, sighttp.AuditQuery{Team: team, Limit: 1000})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	var id string
	for _, ev := range page.Events {
		if ev.Action == signet.ActionUploadCreate && strings.HasSuffix(ev.ObjectKey, key) {
			id = ev.UploadID
		}
	}
	if id == "" {
		t.Fatalf("no upload.create audit event for %s", key)
	}
	st, err := e.c.UploadState(ctx, team, id)
	if err != nil {
		t.Fatalf("UploadState: %v", err)
	}
	if st.State != signet.UploadAborted || len(st.Parts) != 0 {
		t.Errorf("upload state %q with %d parts, want %q with none", st.State, len(st.Parts), signet.UploadAborted)
	}
	if ents, err := os.ReadDir(filepath.Join(e.blobDir, "uploads")); err != nil || len(ents) != 0 {
		t.Errorf("store's uploads directory holds %d entries (%v), want none", len(ents), err)
	}
}

func TestUploadRetries(t *testing.T) {
	defer transfer.SetBackoff(time.Millisecond, 10*time.Millisecond)()
	e := newEnv(t)
	ctx := context.Background()
	data := randomBytes(16<<20, 6)

	t.Run("Transient", func(t *testing.T) {
		var mu sync.Mutex
		seen := map[int]int{}
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			for n := 1; n <= 4; n++ {
				if isPart(req, n) {
					seen[n]++
					switch {
					case n == 2 && seen[n] <= 2:
						return answer(req, http.StatusServiceUnavailable), nil
					case n == 3 && seen[n] == 1:
						return nil, errors.New("connection reset by test")
					}
				}
			}
			return nil, nil
		}, nil)
		defer e.faults.set(nil, nil)
		res, err := transfer.Upload(ctx, e.c, team, "retried", bytes.NewReader(data), int64(len(data)),
			&transfer.Options{PartSize: 5 << 20, Threshold: -1, HTTP: e.HTTP})
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		if res.Parts != 4 {
			t.Errorf("Upload used %d parts, want 4", res.Parts)
		}
		if seen[2] != 3 || seen[3] != 2 {
			t.Errorf("part 2 sent %d times (want 3), part 3 sent %d times (want 2)", seen[2], seen[3])
		}
		if got := e.download(t, "retried"); !bytes.Equal(got, data) {
			t.Error("downloaded bytes differ")
		}
	})

	t.Run("GiveUp", func(t *testing.T) {
		// A transport whose errors quote the URL: the error must not.
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut {
				return nil, fmt.Errorf("dial %s: connection refused", req.URL)
			}
			return nil, nil
		}, nil)
		defer e.faults.set(nil, nil)
		_, err := transfer.Upload(ctx, e.c, team, "unreachable", bytes.NewReader(data[:1000]), 1000,
			&transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.Unavailable {
			t.Errorf("Upload: code %q (%v), want %q", code, err, signet.Unavailable)
		}
		checkNoSecret(t, err)
		if n := len(e.faults.requests()); n != 6 {
			t.Errorf("sent %d requests, want 6 (one and five retries)", n)
		}
	})
}

func TestDownloadFile(t *testing.T) {
	defer transfer.SetBackoff(time.Millisecond, 10*time.Millisecond)()
	e := newEnv(t)
	ctx := context.Background()
	data := randomBytes(3<<20, 7)
	if _, err := transfer.Upload(ctx, e.c, team, "obj", bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("Upload: %v", err)
	}

	// noPartial checks that a failed download left the old file in place
	// and no temporary file.
	noPartial := func(t *testing.T, dst string, old []byte) {
		t.Helper()
		got, err := os.ReadFile(dst)
		switch {
		case old == nil && !errors.Is(err, os.ErrNotExist):
			t.Errorf("%s exists after a failed download (%d bytes, %v)", dst, len(got), err)
		case old != nil && !bytes.Equal(got, old):
			t.Errorf("%s changed after a failed download", dst)
		}
		if _, err := os.Stat(dst + ".signet-part"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary file left behind: %v", err)
		}
	}

	t.Run("OK", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "obj")
		if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst, nil)
		if err != nil {
			t.Fatalf("DownloadFile: %v", err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, data) || res.SHA256 != sum(data) || res.Parts != 1 {
			t.Errorf("DownloadFile = %+v; file holds %d bytes", res, len(got))
		}
		noPartial(t, dst, data)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "missing")
		_, err := transfer.DownloadFile(ctx, e.c, team, "missing", dst, nil)
		if code := signet.ErrorCode(err); code != signet.NotFound {
			t.Errorf("DownloadFile: code %q (%v), want %q", code, err, signet.NotFound)
		}
		checkNoSecret(t, err)
		noPartial(t, dst, nil)
	})

	t.Run("Resumes", func(t *testing.T) {
		first := true
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			if first && req.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
				first = false
				resp.Body = &brokenBody{r: resp.Body, n: 1 << 20}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		dst := filepath.Join(t.TempDir(), "obj")
		res, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst, &transfer.Options{HTTP: e.HTTP})
		if err != nil {
			t.Fatalf("DownloadFile: %v", err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, data) || res.SHA256 != sum(data) {
			t.Errorf("DownloadFile = %+v; file holds %d bytes that differ", res, len(got))
		}
		if reqs := e.faults.requests(); len(reqs) != 2 || !strings.Contains(reqs[1], `range="bytes=1048576-"`) {
			t.Errorf("requests %q; want a GET, then a GET of the rest from byte 1048576", reqs)
		}
	})

	t.Run("ParallelResumes", func(t *testing.T) {
		var mu sync.Mutex
		broken := false
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			mu.Lock()
			defer mu.Unlock()
			if !broken && req.Header.Get("Range") == "bytes=1048576-2097151" {
				broken = true
				resp.Body = &brokenBody{r: resp.Body, n: 100 << 10}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		dst := filepath.Join(t.TempDir(), "obj")
		res, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst,
			&transfer.Options{HTTP: e.HTTP, Threshold: -1, PartSize: 1 << 20, Concurrency: 3})
		if err != nil {
			t.Fatalf("DownloadFile: %v", err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, data) || res.SHA256 != sum(data) || res.Parts != 3 {
			t.Errorf("DownloadFile = %+v; file holds %d bytes (equal: %v)", res, len(got), bytes.Equal(got, data))
		}
		resumed := false
		for _, r := range e.faults.requests() {
			resumed = resumed || strings.Contains(r, `range="bytes=1150976-2097151"`)
		}
		if !resumed {
			t.Errorf("requests %q; want the broken range resumed from byte 1150976", e.faults.requests())
		}
		noPartial(t, dst, data)
	})

	t.Run("ErrChanged", func(t *testing.T) {
		if _, err := transfer.Upload(ctx, e.c, team, "changing", bytes.NewReader(data), int64(len(data)), nil); err != nil {
			t.Fatalf("Upload: %v", err)
		}
		first := true
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			if first && req.Method == http.MethodGet {
				first = false
				// Replace the object while the first answer is being read,
				// and break that answer after 1 MiB.
				v2 := randomBytes(len(data), 9)
				if _, err := transfer.Upload(ctx, e.c, team, "changing", bytes.NewReader(v2), int64(len(v2)), nil); err != nil {
					t.Errorf("replacing the object: %v", err)
				}
				resp.Body = &brokenBody{r: resp.Body, n: 1 << 20}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		dst := filepath.Join(t.TempDir(), "obj")
		_, err := transfer.DownloadFile(ctx, e.c, team, "changing", dst, &transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.Conflict {
			t.Errorf("DownloadFile: code %q (%v), want %q", code, err, signet.Conflict)
		}
		noPartial(t, dst, nil)
	})

	t.Run("Broken", func(t *testing.T) {
		n := 0
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if n++; n > 1 {
				return nil, errors.New("connection refused by test")
			}
			return nil, nil
		}, func(req *http.Request, resp *http.Response) *http.Response {
			resp.Body = &brokenBody{r: resp.Body, n: 1 << 20}
			return resp
		})
		defer e.faults.set(nil, nil)
		dst := filepath.Join(t.TempDir(), "obj")
		if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst, &transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.Unavailable {
			t.Errorf("DownloadFile: code %q (%v), want %q", code, err, signet.Unavailable)
		}
		checkNoSecret(t, err)
		noPartial(t, dst, []byte("old"))
	})

	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		dst := filepath.Join(t.TempDir(), "obj")
		_, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst, &transfer.Options{
			Progress: func(done, total int64) {
				if done > 0 {
					cancel()
				}
			},
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("DownloadFile: %v, want context.Canceled", err)
		}
		noPartial(t, dst, nil)
	})

	t.Run("RefusedTwice", func(t *testing.T) {
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			return answer(req, http.StatusForbidden), nil
		}, nil)
		defer e.faults.set(nil, nil)
		dst := filepath.Join(t.TempDir(), "obj")
		_, err := transfer.DownloadFile(ctx, e.c, team, "obj", dst, &transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.PermissionDenied {
			t.Errorf("DownloadFile: code %q (%v), want %q", code, err, signet.PermissionDenied)
		}
		if n := len(e.faults.requests()); n != 2 {
			t.Errorf("sent %d GETs, want 2 (the URL, then one fresh URL)", n)
		}
		noPartial(t, dst, nil)
	})
}

func BenchmarkUpload64MiB(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	data := randomBytes(64<<20, 8)
	type benchCase struct {
		name string
		o    transfer.Options
	}
	cases := []benchCase{{"SinglePut", transfer.Options{}}}
	for _, ps := range []int64{8, 16, 32} {
		for _, conc := range []int{1, 4, 8} {
			cases = append(cases, benchCase{
				fmt.Sprintf("Parts%dMiB/Concurrency%d", ps, conc),
				transfer.Options{Threshold: -1, PartSize: ps << 20, Concurrency: conc},
			})
		}
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := transfer.Upload(ctx, e.c, team, "bench", bytes.NewReader(data), int64(len(data)), &bc.o); err != nil {
					b.Fatalf("Upload: %v", err)
				}
			}
		})
	}
}
