package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/atomicfile"
)

// Download writes the object key of team to w and returns its size and
// SHA-256, computed over the bytes written. When the store reports the
// object's SHA-256 (see Result.Verified), the bytes are checked against it:
// a mismatch is ChecksumMismatch, and w then holds bytes that are not the
// object's.
//
// After a broken connection or a 5xx answer, Download resumes with a Range
// request from the first byte not yet written (a store that ignores Range
// is read again and the bytes w already holds are skipped). If the object
// changes between two requests, Download fails with Conflict. w is not
// rolled back on failure: it may hold a prefix of the object. Use
// DownloadFile to write a file that appears only when complete.
func Download(ctx context.Context, c *sighttp.Client, team, key string, w io.Writer, o *Options) (*Result, error) {
	d, err := newDownloader("transfer.Download", c, team, key, o)
	if err != nil {
		return nil, err
	}
	resp, start, err := d.open(ctx, 0, -1, &retrier{j: &d.job, what: d.name()})
	if err != nil {
		return nil, err
	}
	d.prog.start(d.size(), 0)
	h := sha256.New()
	n, err := d.copyRange(ctx, d.name(), 0, -1, io.MultiWriter(w, h), resp, start)
	if err != nil {
		return nil, err
	}
	return d.result(n, h.Sum(nil), 1)
}

// DownloadFile writes the object key of team to the file at path, replacing
// any file there, and returns its size and SHA-256.
//
// The bytes go to path+".signet-part" in the same directory, which is
// synced to disk and renamed to path only when complete, so path never
// holds a partial object; on failure the temporary file is removed. Objects
// larger than Options.Threshold are fetched with Concurrency parallel
// ranged requests of Options.PartSize bytes (DefaultRangeSize when 0) when
// the store supports ranges; the file is then read back to compute its
// SHA-256. Otherwise DownloadFile streams as Download does. As with
// Download, the SHA-256 is checked against the store's when it reports one;
// on a mismatch path is left as it was. Two downloads to the same path at
// once share the temporary file and must be avoided.
func DownloadFile(ctx context.Context, c *sighttp.Client, team, key, path string, o *Options) (*Result, error) {
	d, err := newDownloader("transfer.DownloadFile", c, team, key, o)
	if err != nil {
		return nil, err
	}
	tmp := path + ".signet-part"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return nil, err
	}
	res, err := d.toTemp(ctx, f, func() error { return os.Rename(tmp, path) }, func() { os.Remove(tmp) })
	if err != nil {
		return nil, err
	}
	atomicfile.SyncDir(filepath.Dir(path)) // makes the rename durable; best effort
	return res, nil
}

// toTemp downloads into f, a temporary file, and closes it; once the
// download is complete and synced, commit moves the file into place.
// Otherwise, or when commit fails, remove deletes the temporary file.
func (d *downloader) toTemp(ctx context.Context, f *os.File, commit func() error, remove func()) (*Result, error) {
	res, err := d.toFile(ctx, f)
	if err == nil && ctx.Err() != nil {
		// Cancelled as the last bytes arrived: do not commit the file.
		err = context.Cause(ctx)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = commit()
	}
	if err != nil {
		remove()
		return nil, err
	}
	return res, nil
}

// downloader is one download in progress.
type downloader struct {
	job
	src *urlSource

	mu        sync.Mutex
	validator string // ETag (or Last-Modified) of the first answer
	total     int64  // object size, -1 until known
	want      []byte // the SHA-256 the store reported, if any

	// What signet's first presign answer said of the object, when the
	// store could be asked: its SHA-256 (nil when unknown) and ETag.
	looked   bool
	statSHA  []byte
	statETag string
}

func newDownloader(op string, c *sighttp.Client, team, key string, o *Options) (*downloader, error) {
	opts, err := o.withDefaults(op)
	if err != nil {
		return nil, err
	}
	d := &downloader{
		job:   job{op: op, c: c, team: team, key: key, o: opts, prog: newProgress(opts.Progress, -1)},
		total: -1,
	}
	req := &sighttp.PresignRequest{Operation: "download", Objects: []sighttp.ObjectRequest{{Key: key}}, WithSHA256: true}
	d.src = &urlSource{sign: func(ctx context.Context) (*target, error) { return d.presignLookup(ctx, req) }}
	return d, nil
}

// presignLookup asks for a download URL together with what the store
// knows of the object (its SHA-256, recorded when signet completed a
// verified upload, and its ETag), and keeps the first answer's.
func (d *downloader) presignLookup(ctx context.Context, req *sighttp.PresignRequest) (*target, error) {
	d.mu.Lock()
	once := *req
	once.WithSHA256 = !d.looked // a renewed URL needs no second look-up
	d.mu.Unlock()
	t, r, err := d.presignObject(ctx, &once)
	if err != nil {
		return nil, err
	}
	var sum []byte
	if r.SHA256 != "" {
		if sum, err = hex.DecodeString(r.SHA256); err != nil || len(sum) != sha256.Size {
			return nil, d.errorf(signet.Internal, nil, "server answered a malformed sha256 for %s", d.name())
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.looked {
		d.looked, d.statSHA, d.statETag = true, sum, r.ETag
	}
	return t, nil
}

// size returns the object's size, or -1 while it is unknown.
func (d *downloader) size() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// toFile downloads the object into f, in parallel ranges when it is large.
func (d *downloader) toFile(ctx context.Context, f *os.File) (*Result, error) {
	resp, start, err := d.open(ctx, 0, -1, &retrier{j: &d.job, what: d.name()})
	if err != nil {
		return nil, err
	}
	total := d.size()
	d.prog.start(total, 0)
	rs := d.o.PartSize
	if rs == 0 {
		rs = DefaultRangeSize
	}
	if resp.StatusCode != http.StatusOK || total <= rs || d.o.Concurrency < 2 ||
		(d.o.Threshold > 0 && total <= d.o.Threshold) || !acceptsRanges(resp) {
		h := sha256.New()
		n, err := d.copyRange(ctx, d.name(), 0, -1, io.MultiWriter(f, h), resp, start)
		if err != nil {
			return nil, err
		}
		return d.result(n, h.Sum(nil), 1)
	}

	// The first answer serves the first range; the others are fetched by
	// Concurrency workers, each writing its ranges in place.
	count := int((total + rs - 1) / rs)
	var next atomic.Int64 // index of the next range to fetch
	next.Store(1)
	g, gctx := newGroup(ctx)
	worker := func(first *http.Response) func() error {
		return func() error {
			if first != nil {
				what := fmt.Sprintf("range 1 of %s", d.name())
				if _, err := d.copyRange(gctx, what, 0, rs, io.NewOffsetWriter(f, 0), first, 0); err != nil {
					return err
				}
			}
			for i := next.Add(1) - 1; i < int64(count); i = next.Add(1) - 1 {
				off := i * rs
				what := fmt.Sprintf("range %d of %s", i+1, d.name())
				if _, err := d.copyRange(gctx, what, off, min(off+rs, total), io.NewOffsetWriter(f, off), nil, 0); err != nil {
					return err
				}
			}
			return nil
		}
	}
	g.Go(worker(resp))
	for range min(d.o.Concurrency, count) - 1 {
		g.Go(worker(nil))
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sum, err := hashSection(ctx, f, total)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, d.errorf(signet.Internal, err, "reading back %s", f.Name())
	}
	return d.result(total, sum, count)
}

// result describes the downloaded object of size bytes with SHA-256 sum,
// moved in parts requests, after checking sum against the SHA-256 the store
// reported, if any.
func (d *downloader) result(size int64, sum []byte, parts int) (*Result, error) {
	d.mu.Lock()
	want := d.want
	d.mu.Unlock()
	if want != nil && !bytes.Equal(sum, want) {
		return nil, d.errorf(signet.ChecksumMismatch, nil, "the bytes received for %s do not match the SHA-256 the store reports", d.name())
	}
	return &Result{Key: d.key, Size: size, SHA256: hex.EncodeToString(sum), Parts: parts, Verified: want != nil}, nil
}

// storeSHA256 returns the object's SHA-256 as the store reports it in an
// answer's header, or nil. The built-in local store's ETag is the quoted
// hex SHA-256 of the object, and no other store uses a 64-digit hex ETag
// (S3-compatible stores use MD5s, GCS and Azure other forms).
// S3-compatible stores may send a full-object x-amz-checksum-sha256
// (base64); a composite one (a checksum of the parts' checksums) is not the
// object's SHA-256 and is ignored.
func storeSHA256(h http.Header) []byte {
	if e := h.Get("ETag"); len(e) == 2+2*sha256.Size && e[0] == '"' && e[len(e)-1] == '"' {
		if b, err := hex.DecodeString(e[1 : len(e)-1]); err == nil {
			return b
		}
	}
	if v := h.Get("X-Amz-Checksum-Sha256"); v != "" {
		if t := h.Get("X-Amz-Checksum-Type"); t == "" || strings.EqualFold(t, "FULL_OBJECT") {
			if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == sha256.Size {
				return b
			}
		}
	}
	return nil
}

func acceptsRanges(resp *http.Response) bool {
	for _, v := range strings.Split(resp.Header.Get("Accept-Ranges"), ",") {
		if strings.TrimSpace(v) == "bytes" {
			return true
		}
	}
	return false
}

// open sends a GET for bytes [from, to) of the object (to < 0: to its end),
// retrying transient failures and renewing the URL after a first 403. It
// returns the answer and the offset in the object of its first body byte.
func (d *downloader) open(ctx context.Context, from, to int64, rt *retrier) (*http.Response, int64, error) {
	for {
		t, gen, err := d.src.get(ctx)
		if err != nil {
			return nil, 0, err
		}
		req, err := d.newRequest(ctx, t, nil, 0)
		if err != nil {
			return nil, 0, err
		}
		if from > 0 || to >= 0 {
			r := "bytes=" + strconv.FormatInt(from, 10) + "-"
			if to >= 0 {
				r += strconv.FormatInt(to-1, 10)
			}
			req.Header.Set("Range", r)
		}
		resp, err := d.o.HTTP.Do(req)
		if err != nil {
			if err := rt.transient(ctx, sanitize(err, t), 0); err != nil {
				return nil, 0, err
			}
			continue
		}
		switch classify(resp.StatusCode) {
		case statusOK:
			start, err := d.check(rt.what, resp)
			if err != nil {
				discard(resp)
				return nil, 0, err
			}
			return resp, start, nil
		case statusRefused:
			discard(resp)
			if err := rt.refused(resp); err != nil {
				return nil, 0, err
			}
			if err := d.src.renew(ctx, gen); err != nil {
				return nil, 0, err
			}
		case statusTransient:
			serr := d.storeError(rt.what, resp)
			wish := retryAfter(resp)
			discard(resp)
			if err := rt.transient(ctx, serr, wish); err != nil {
				return nil, 0, err
			}
		default:
			serr := d.storeError(rt.what, resp)
			discard(resp)
			if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
				serr.Code = signet.Conflict // the object shrank
			}
			return nil, 0, serr
		}
	}
}

// check validates a successful answer: a whole body (200) or a range (206)
// of the same object as every earlier answer. It returns the offset of the
// body's first byte.
func (d *downloader) check(what string, resp *http.Response) (int64, error) {
	if resp.Uncompressed {
		return 0, d.errorf(signet.Internal, nil, "%s: the HTTP client decompressed the body; disable its compression", what)
	}
	var start, total int64
	switch resp.StatusCode {
	case http.StatusOK:
		start, total = 0, resp.ContentLength
	case http.StatusPartialContent:
		var ok bool
		if start, total, ok = parseContentRange(resp.Header.Get("Content-Range")); !ok {
			return 0, d.errorf(signet.Internal, nil, "%s: store answered a malformed Content-Range", what)
		}
	default:
		return 0, d.storeError(what, resp)
	}
	v := resp.Header.Get("ETag")
	if v == "" {
		v = resp.Header.Get("Last-Modified")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if (v != "" && d.validator != "" && v != d.validator) || (total >= 0 && d.total >= 0 && total != d.total) {
		return 0, d.errorf(signet.Conflict, nil, "%s changed during the download", d.name())
	}
	if d.validator == "" {
		d.validator = v
		d.want = storeSHA256(resp.Header)
		if d.statSHA != nil {
			// The SHA-256 signet reported describes the object whose ETag
			// it reported; another ETag means the object was replaced
			// between the look-up and this answer.
			if e := resp.Header.Get("ETag"); d.statETag != "" && e != "" && strings.Trim(e, `"`) != strings.Trim(d.statETag, `"`) {
				return 0, d.errorf(signet.Conflict, nil, "%s changed during the download", d.name())
			}
			d.want = d.statSHA
		}
	}
	if d.total < 0 {
		d.total = total
	}
	return start, nil
}

// parseContentRange parses "bytes first-last/total" (total may be "*",
// returned as -1).
func parseContentRange(s string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	a, b, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		var err error
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= last {
			return 0, 0, false
		}
	}
	return first, total, true
}

// copyRange writes bytes [from, to) of the object (to < 0: to its end) to
// w, reading first from resp (whose body starts at offset start) when it is
// not nil, and resuming with ranged requests after transient failures. It
// returns the number of bytes written.
func (d *downloader) copyRange(ctx context.Context, what string, from, to int64, w io.Writer, resp *http.Response, start int64) (int64, error) {
	rt := &retrier{j: &d.job, what: what}
	cw := &countWriter{w: w, m: d.prog.meter()}
	for {
		if resp == nil {
			var err error
			if resp, start, err = d.open(ctx, from+cw.n, to, rt); err != nil {
				return cw.n, err
			}
		}
		before := cw.n
		err := d.consume(what, resp, start, from, to, cw)
		resp.Body.Close()
		resp = nil
		switch {
		case err == nil:
			return cw.n, nil
		case cw.err != nil:
			return cw.n, fmt.Errorf("%s: writing: %w", what, cw.err)
		case ctx.Err() != nil:
			return cw.n, context.Cause(ctx)
		}
		if se, ok := err.(*signet.Error); ok {
			return cw.n, se
		}
		if cw.n > before {
			rt.progressed()
		}
		if err := rt.transient(ctx, d.errorf(signet.Unavailable, err, "%s: reading", what), 0); err != nil {
			return cw.n, err
		}
	}
}

// consume copies resp's body, which starts at offset start of the object,
// to cw, from offset from+cw.n up to to (or the end). A *signet.Error is
// final; any other error is a broken transfer worth resuming.
func (d *downloader) consume(what string, resp *http.Response, start, from, to int64, cw *countWriter) error {
	at := from + cw.n
	if start > at {
		return d.errorf(signet.Internal, nil, "%s: store answered bytes from %d when asked from %d", what, start, at)
	}
	if skip := at - start; skip > 0 {
		if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
			return err
		}
	}
	var r io.Reader = resp.Body
	if to >= 0 {
		r = io.LimitReader(resp.Body, to-at)
	}
	if _, err := io.CopyBuffer(cw, r, make([]byte, 256<<10)); err != nil {
		return err
	}
	end := to
	if end < 0 {
		end = d.size()
	}
	if end >= 0 && from+cw.n < end {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// countWriter counts the bytes written through it, reports them to a
// meter, and keeps the first write error, which is final.
type countWriter struct {
	w   io.Writer
	m   *meter
	n   int64
	err error
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	c.n += int64(n)
	c.m.reach(c.n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
