package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/transfer"
)

const (
	resumePartSize = 5 << 20
	// resumeSize makes 9 parts: 8 of 5 MiB and a short last one.
	resumeSize = 8*resumePartSize + 4321
)

// interrupt runs UploadFile with o and cancels it once the store has
// accepted n parts. It returns UploadFile's error, after the store has
// finished the requests that were in flight.
func (e *env) interrupt(t *testing.T, src, key string, o transfer.Options, n int) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	accepted := 0
	e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
		if req.Method == http.MethodPut && req.URL.Query().Get("part") != "" && resp.StatusCode == http.StatusOK {
			mu.Lock()
			if accepted++; accepted == n {
				cancel()
			}
			mu.Unlock()
		}
		return resp
	})
	defer e.faults.set(nil, nil)
	_, err := transfer.UploadFile(ctx, e.c, team, key, src, &o)
	e.store.idle(t)
	return err
}

// states returns the resume state files in dir, decoded loosely.
func states(t *testing.T, dir string) []map[string]any {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("state file %s: %v", ent.Name(), err)
		}
		out = append(out, m)
	}
	return out
}

// onlyState returns the upload id recorded by the one state file in dir.
func onlyState(t *testing.T, dir string) string {
	t.Helper()
	st := states(t, dir)
	if len(st) != 1 {
		t.Fatalf("%s holds %d state files, want 1", dir, len(st))
	}
	id, _ := st[0]["upload_id"].(string)
	if id == "" {
		t.Fatalf("state file without an upload id: %v", st[0])
	}
	return id
}

// heldBytes returns the size of the parts the store holds for upload id,
// checking that the session is still active.
func (e *env) heldBytes(t *testing.T, id string) (parts int, n int64) {
	t.Helper()
	st, err := e.c.UploadState(context.Background(), team, id)
	if err != nil {
		t.Fatalf("UploadState: %v", err)
	}
	if st.State != signet.UploadActive {
		t.Fatalf("upload %s is %s after an interrupted run, want it kept active", id, st.State)
	}
	for _, p := range st.Parts {
		n += p.Size
	}
	return len(st.Parts), n
}

func TestUploadResume(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(resumeSize, 10)
	opts := func(dir string) transfer.Options {
		return transfer.Options{PartSize: resumePartSize, Concurrency: 4, HTTP: e.HTTP, ResumeDir: dir}
	}

	t.Run("OK", func(t *testing.T) {
		src := writeFile(t, data)
		dir := filepath.Join(t.TempDir(), "resume")
		o := opts(dir)

		e.store.received.Store(0)
		if err := e.interrupt(t, src, "resume/ok", o, 3); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v, want context.Canceled", err)
		}
		first := e.store.received.Load()
		id := onlyState(t, dir)
		held, heldN := e.heldBytes(t, id)
		if held < 3 || held == 9 {
			t.Fatalf("the store holds %d parts after the interrupted run, want 3 to 8", held)
		}
		// What the first run sent beyond the parts stored: only the parts
		// in flight when it was cancelled.
		if cut := first - heldN; cut < 0 || cut > int64(o.Concurrency)*resumePartSize {
			t.Errorf("first run: the store received %d bytes, %d beyond the %d parts it holds; want at most %d in-flight parts",
				first, cut, held, o.Concurrency)
		}
		checkStateFiles(t, dir, e.c)

		e.store.received.Store(0)
		var firstDone int64 = -1
		o.Progress = func(done, total int64) {
			if firstDone < 0 {
				firstDone = done
			}
		}
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/ok", src, &o)
		if err != nil {
			t.Fatalf("resumed UploadFile: %v", err)
		}
		second := e.store.received.Load()
		t.Logf("first run: store received %d bytes and holds %d parts (%d bytes); second run: received %d bytes",
			first, held, heldN, second)
		if second != resumeSize-heldN {
			t.Errorf("second run: the store received %d bytes, want %d (the object's %d less the %d bytes of the %d parts it held)",
				second, resumeSize-heldN, resumeSize, heldN, held)
		}
		if total := first + second; total > resumeSize+int64(o.Concurrency)*resumePartSize {
			t.Errorf("the store received %d bytes in both runs for an object of %d", total, resumeSize)
		}
		if firstDone != heldN {
			t.Errorf("the first progress call reported %d bytes done, want the %d bytes held", firstDone, heldN)
		}
		want := transfer.Result{Key: "resume/ok", Size: resumeSize, SHA256: sum(data), Parts: 9, ResumedParts: held, Verified: true}
		if *res != want {
			t.Errorf("resumed UploadFile = %+v, want %+v", *res, want)
		}
		if got := e.download(t, "resume/ok"); !bytes.Equal(got, data) {
			t.Error("the resumed object differs from the file")
		}
		if st := states(t, dir); len(st) != 0 {
			t.Errorf("%d state files left after the upload completed", len(st))
		}
	})

	t.Run("FileChanged", func(t *testing.T) {
		src := writeFile(t, data)
		dir := t.TempDir()
		o := opts(dir)
		if err := e.interrupt(t, src, "resume/changed", o, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v", err)
		}
		old := onlyState(t, dir)
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(src, later, later); err != nil {
			t.Fatal(err)
		}
		e.store.received.Store(0)
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/changed", src, &o)
		if err != nil {
			t.Fatalf("UploadFile of the touched file: %v", err)
		}
		// Bytes of the cancelled run's in-flight parts may still reach the
		// store after the counter was reset, so the count is bounded by
		// those rather than exact; a fresh upload sends every byte.
		if got := e.store.received.Load(); res.ResumedParts != 0 || got < resumeSize || got > resumeSize+4*5<<20 {
			t.Errorf("UploadFile of the touched file resumed %d parts and sent %d bytes; want a fresh upload of %d bytes",
				res.ResumedParts, got, resumeSize)
		}
		if st, err := e.c.UploadState(context.Background(), team, old); err != nil || st.State != signet.UploadAborted {
			t.Errorf("the superseded session: %v, %v; want it aborted", st, err)
		}
		if st := states(t, dir); len(st) != 0 {
			t.Errorf("%d state files left", len(st))
		}

		// Another size is another file too.
		if err := e.interrupt(t, src, "resume/changed", o, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v", err)
		}
		longer := append(bytes.Clone(data), "more"...)
		if err := os.WriteFile(src, longer, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err = transfer.UploadFile(context.Background(), e.c, team, "resume/changed", src, &o)
		if err != nil || res.ResumedParts != 0 || res.SHA256 != sum(longer) {
			t.Errorf("UploadFile of the grown file = %+v, %v; want a fresh upload", res, err)
		}
		if got := e.download(t, "resume/changed"); !bytes.Equal(got, longer) {
			t.Error("downloaded bytes differ from the grown file")
		}
	})

	t.Run("SessionAborted", func(t *testing.T) {
		src := writeFile(t, data)
		dir := t.TempDir()
		o := opts(dir)
		if err := e.interrupt(t, src, "resume/aborted", o, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v", err)
		}
		if err := e.c.AbortUpload(context.Background(), team, onlyState(t, dir)); err != nil {
			t.Fatalf("AbortUpload: %v", err)
		}
		e.store.received.Store(0)
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/aborted", src, &o)
		if err != nil {
			t.Fatalf("UploadFile after the session was aborted: %v", err)
		}
		// As above: late bytes of the cancelled run bound the count.
		if got := e.store.received.Load(); res.ResumedParts != 0 || got < resumeSize || got > resumeSize+4*5<<20 {
			t.Errorf("UploadFile resumed %d parts and sent %d bytes; want a fresh upload of %d bytes",
				res.ResumedParts, got, resumeSize)
		}
		if got := e.download(t, "resume/aborted"); !bytes.Equal(got, data) {
			t.Error("downloaded bytes differ")
		}
		if st := states(t, dir); len(st) != 0 {
			t.Errorf("%d state files left", len(st))
		}
	})

	t.Run("SessionExpired", func(t *testing.T) {
		e := newEnv(t) // this subtest moves the server's clock
		src := writeFile(t, data)
		dir := t.TempDir()
		o := opts(dir)
		o.HTTP = e.HTTP
		if err := e.interrupt(t, src, "resume/expired", o, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v", err)
		}
		e.clock.advance(25 * time.Hour)
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/expired", src, &o)
		if err != nil || res.ResumedParts != 0 {
			t.Fatalf("UploadFile after the session expired = %+v, %v; want a fresh upload", res, err)
		}
		if got := e.download(t, "resume/expired"); !bytes.Equal(got, data) {
			t.Error("downloaded bytes differ")
		}
	})

	t.Run("ChangedInPlace", func(t *testing.T) {
		// A file rewritten with its size and time kept looks unchanged:
		// the resumed upload trusts the SHA-256 of the first run, and the
		// server refuses the object the parts make.
		src := writeFile(t, data)
		fi, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		o := opts(dir)
		if err := e.interrupt(t, src, "resume/inplace", o, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted UploadFile: %v", err)
		}
		id := onlyState(t, dir)
		other := randomBytes(resumeSize, 11)
		if err := os.WriteFile(src, other, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(src, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		_, err = transfer.UploadFile(context.Background(), e.c, team, "resume/inplace", src, &o)
		if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
			t.Fatalf("resumed UploadFile of a file changed in place: code %q (%v), want %q", code, err, signet.ChecksumMismatch)
		}
		if st, err := e.c.UploadState(context.Background(), team, id); err != nil || st.State != signet.UploadAborted {
			t.Errorf("session after a checksum mismatch: %v, %v; want it aborted", st, err)
		}
		if st := states(t, dir); len(st) != 0 {
			t.Errorf("%d state files left after a checksum mismatch", len(st))
		}
		// The next run starts afresh and hashes the file again.
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/inplace", src, &o)
		if err != nil || res.ResumedParts != 0 || res.SHA256 != sum(other) {
			t.Fatalf("UploadFile after the mismatch = %+v, %v; want a fresh upload of the new bytes", res, err)
		}
		if got := e.download(t, "resume/inplace"); !bytes.Equal(got, other) {
			t.Error("downloaded bytes differ")
		}
	})

	t.Run("RefusedAborts", func(t *testing.T) {
		// A refusal that a rerun would meet again aborts the session even
		// when it could be resumed.
		src := writeFile(t, data)
		dir := t.TempDir()
		o := opts(dir)
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if isPart(req, 2) {
				return answer(req, http.StatusForbidden), nil
			}
			return nil, nil
		}, nil)
		_, err := transfer.UploadFile(context.Background(), e.c, team, "resume/refused", src, &o)
		e.faults.set(nil, nil)
		if code := signet.ErrorCode(err); code != signet.PermissionDenied {
			t.Fatalf("UploadFile: code %q (%v), want %q", code, err, signet.PermissionDenied)
		}
		e.store.idle(t)
		e.checkAborted(t, "resume/refused")
		if st := states(t, dir); len(st) != 0 {
			t.Errorf("%d state files left after an abort", len(st))
		}
	})

	t.Run("UnavailableKeeps", func(t *testing.T) {
		defer transfer.SetBackoff(time.Millisecond, 5*time.Millisecond)()
		src := writeFile(t, data)
		dir := t.TempDir()
		o := opts(dir)
		e.faults.set(func(req *http.Request) (*http.Response, error) {
			if isPart(req, 3) {
				return nil, errors.New("connection refused by test")
			}
			return nil, nil
		}, nil)
		_, err := transfer.UploadFile(context.Background(), e.c, team, "resume/unavailable", src, &o)
		e.faults.set(nil, nil)
		if code := signet.ErrorCode(err); code != signet.Unavailable {
			t.Fatalf("UploadFile: code %q (%v), want %q", code, err, signet.Unavailable)
		}
		e.store.idle(t)
		e.heldBytes(t, onlyState(t, dir)) // still active
		res, err := transfer.UploadFile(context.Background(), e.c, team, "resume/unavailable", src, &o)
		if err != nil || res.ResumedParts == 0 {
			t.Fatalf("rerun = %+v, %v; want it to resume", res, err)
		}
		if got := e.download(t, "resume/unavailable"); !bytes.Equal(got, data) {
			t.Error("downloaded bytes differ")
		}
	})
}

// checkStateFiles checks that the state files in dir are private and hold
// no secret: no URL, no signature, no API key, no server address.
func checkStateFiles(t *testing.T, dir string, c *sighttp.Client) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("resume directory mode %v (%v), want no access for others", fi.Mode().Perm(), err)
	}
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{c.Token, c.Addr, "http", "sig=", "/blob/", "kid="} {
			if strings.Contains(string(b), s) {
				t.Errorf("state file %s contains %q", ent.Name(), s)
			}
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("state file mode %v (%v), want 0600", fi.Mode().Perm(), err)
		}
	}
}

// TestUploadURLExpires moves the server's and the store's clock two hours
// forward while part 2 is on its way, as if the transfer had been slow:
// its URL, minted an hour-long URL earlier, has expired when the store
// reads it.
func TestUploadURLExpires(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(12<<20, 12)
	var mu sync.Mutex
	var urls []string
	var statuses []int
	e.faults.set(func(req *http.Request) (*http.Response, error) {
		if isPart(req, 2) {
			mu.Lock()
			defer mu.Unlock()
			if urls = append(urls, req.URL.String()); len(urls) == 1 {
				e.clock.advance(2 * time.Hour)
			}
		}
		return nil, nil
	}, func(req *http.Request, resp *http.Response) *http.Response {
		if isPart(req, 2) {
			mu.Lock()
			statuses = append(statuses, resp.StatusCode)
			mu.Unlock()
		}
		return resp
	})
	defer e.faults.set(nil, nil)
	res, err := transfer.Upload(context.Background(), e.c, team, "expiring", bytes.NewReader(data), int64(len(data)),
		&transfer.Options{PartSize: 5 << 20, Threshold: -1, Concurrency: 1, HTTP: e.HTTP})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if res.Parts != 3 || res.SHA256 != sum(data) {
		t.Errorf("Upload = %+v", res)
	}
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Errorf("part 2 was sent %d times; want twice, the second time with a freshly fetched URL", len(urls))
	}
	if len(statuses) != 2 || statuses[0] != http.StatusForbidden || statuses[1] != http.StatusOK {
		t.Errorf("the store answered part 2 with %v; want 403 (expired), then 200", statuses)
	}
	if got := e.download(t, "expiring"); !bytes.Equal(got, data) {
		t.Error("downloaded bytes differ")
	}
}

func TestDownloadChecksum(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := randomBytes(3<<20, 13)
	if _, err := transfer.Upload(ctx, e.c, team, "obj", bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("Upload: %v", err)
	}

	t.Run("ErrMismatch", func(t *testing.T) {
		// The store sends other bytes than it holds.
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			if req.Method == http.MethodGet {
				resp.Body = &flipBody{r: resp.Body, at: 1000}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		_, err := transfer.Download(ctx, e.c, team, "obj", io.Discard, &transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
			t.Errorf("Download: code %q (%v), want %q", code, err, signet.ChecksumMismatch)
		}
		dst := filepath.Join(t.TempDir(), "obj")
		for _, o := range []transfer.Options{{HTTP: e.HTTP}, {HTTP: e.HTTP, Threshold: -1, PartSize: 1 << 20}} {
			_, err = transfer.DownloadFile(ctx, e.c, team, "obj", dst, &o)
			if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
				t.Errorf("DownloadFile (part size %d): code %q (%v), want %q", o.PartSize, code, err, signet.ChecksumMismatch)
			}
			if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("DownloadFile left %s after a checksum mismatch", dst)
			}
		}
	})

	t.Run("ErrMismatchLookedUp", func(t *testing.T) {
		// The store's answers carry no checksum, but signet looked the
		// object up when it signed the URL: other bytes are still refused.
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			resp.Header.Del("ETag")
			if req.Method == http.MethodGet {
				resp.Body = &flipBody{r: resp.Body, at: 5}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		_, err := transfer.Download(ctx, e.c, team, "obj", io.Discard, &transfer.Options{HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
			t.Errorf("Download: code %q (%v), want %q", code, err, signet.ChecksumMismatch)
		}
	})

	t.Run("NoChecksum", func(t *testing.T) {
		// Neither the store's answers nor signet report a SHA-256 (a
		// store that does not know it): the download succeeds and says it
		// could not be verified.
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			resp.Header.Del("ETag")
			return resp
		})
		defer e.faults.set(nil, nil)
		c := *e.c
		c.HTTP = &http.Client{Transport: stripSHA256{http.DefaultTransport}}
		var buf bytes.Buffer
		res, err := transfer.Download(ctx, &c, team, "obj", &buf, &transfer.Options{HTTP: e.HTTP})
		if err != nil {
			t.Fatalf("Download: %v", err)
		}
		if res.Verified || res.SHA256 != sum(data) || !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("Download = %+v; want the bytes, unverified", res)
		}
	})
}

// flipBody inverts the byte at offset at of the body it wraps.
type flipBody struct {
	r   io.ReadCloser
	at  int64
	off int64
}

func (b *flipBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if i := b.at - b.off; i >= 0 && i < int64(n) {
		p[i] ^= 0xff
	}
	b.off += int64(n)
	return n, err
}

func (b *flipBody) Close() error { return b.r.Close() }

// stripSHA256 removes the sha256 fields of the API's answers, as from a
// server whose store does not know objects' checksums.
type stripSHA256 struct{ base http.RoundTripper }

func (s stripSHA256) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = bytes.ReplaceAll(body, []byte(`"sha256":`), []byte(`"no_sha256":`))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TestResumeSweepsCrashLeftovers checks that UploadFile with a ResumeDir
// removes the temporary state files a crash left behind over an hour ago,
// and keeps a recent one (a state file being written).
func TestResumeSweepsCrashLeftovers(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "0123456789abcdef.upload.json")
	old, err := atomicfile.WriteTemp(state, []byte("{}"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	recent, err := atomicfile.WriteTemp(state, []byte("{}"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, []byte("small"))
	o := transfer.Options{HTTP: e.HTTP, ResumeDir: dir}
	if _, err := transfer.UploadFile(context.Background(), e.c, team, "resume/sweep", src, &o); err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a temporary state file from two hours ago was kept (%v)", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent temporary state file was removed: %v", err)
	}
}
