package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// partBatch is how many part URLs are minted per API call. URLs are minted
// lazily, one batch ahead of the workers, so that few are outstanding and
// none waits long enough to expire.
const partBatch = 16

// abortTimeout bounds the best-effort abort of a failed chunked upload.
const abortTimeout = 30 * time.Second

// UploadFile uploads the file at path as key in team. A path that is not a
// regular file (a pipe, a device) is uploaded as with UploadStream.
func UploadFile(ctx context.Context, c *sighttp.Client, team, key, path string, o *Options) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, &signet.Error{Op: "transfer.UploadFile", Code: signet.Invalid, Msg: fmt.Sprintf("%s is a directory", path)}
	case !fi.Mode().IsRegular():
		return UploadStream(ctx, c, team, key, f, o)
	}
	return upload(ctx, c, team, key, f, fi.Size(), nil, o)
}

// Upload uploads size bytes read from r as key in team. It reads r twice:
// once to compute the SHA-256 that the store then verifies, and once to send
// the bytes; r must not change in between. Parts read r concurrently, as
// io.ReaderAt allows.
//
// Objects up to Options.Threshold go in a single request. Larger ones go as
// a chunked upload; if it fails, the upload is aborted (best effort), so
// that the store does not keep its parts.
func Upload(ctx context.Context, c *sighttp.Client, team, key string, r io.ReaderAt, size int64, o *Options) (*Result, error) {
	return upload(ctx, c, team, key, r, size, nil, o)
}

// UploadStream uploads everything read from r, whose size is not known in
// advance, as key in team. Because the size and SHA-256 must be declared
// before the first byte is sent, r is first copied to a temporary file in
// os.TempDir (which needs as much free space as the stream holds) and
// uploaded from there; the file is removed before UploadStream returns.
func UploadStream(ctx context.Context, c *sighttp.Client, team, key string, r io.Reader, o *Options) (*Result, error) {
	f, err := os.CreateTemp("", "signet-upload-*")
	if err != nil {
		return nil, fmt.Errorf("creating a buffer file: %w", err)
	}
	// Unlink the file at once where the system allows, so that nothing is
	// left behind even if the process dies; otherwise when done.
	if os.Remove(f.Name()) != nil {
		defer os.Remove(f.Name())
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, make([]byte, 256<<10))
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("buffering the upload of %s/%s: %w", team, key, err)
	}
	return upload(ctx, c, team, key, f, n, h.Sum(nil), o)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

// uploader is one upload in progress.
type uploader struct {
	job
	src  io.ReaderAt
	size int64
	sum  string // hex SHA-256
}

// upload uploads r; sum, when not nil, is r's SHA-256, already known.
func upload(ctx context.Context, c *sighttp.Client, team, key string, r io.ReaderAt, size int64, sum []byte, o *Options) (*Result, error) {
	const op = "transfer.Upload"
	opts, err := o.withDefaults(op)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, &signet.Error{Op: op, Code: signet.Invalid, Msg: "size must not be negative"}
	}
	u := &uploader{
		job:  job{op: op, c: c, team: team, key: key, o: opts, prog: newProgress(opts.Progress, size)},
		src:  r,
		size: size,
	}
	if sum == nil {
		if sum, err = hashSection(ctx, r, size); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, u.errorf(signet.Invalid, err, "reading the data for %s", u.name())
		}
	}
	u.sum = hex.EncodeToString(sum)
	u.prog.start(size)
	parts := 1
	if size > 0 && (size > opts.Threshold || opts.Threshold < 0 || size > sighttp.MaxSinglePut) {
		parts, err = u.chunked(ctx)
	} else {
		err = u.single(ctx)
	}
	if err != nil {
		return nil, err
	}
	return &Result{Key: key, Size: size, SHA256: u.sum, Parts: parts}, nil
}

// hashSection returns the SHA-256 of the first size bytes of r, which must
// hold at least that many.
func hashSection(ctx context.Context, r io.ReaderAt, size int64) ([]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(r, 0, size)}, make([]byte, 256<<10))
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("source holds %d bytes, not %d", n, size)
	}
	return h.Sum(nil), nil
}

// single uploads the object with one pre-signed PUT bound to its size and
// SHA-256.
func (u *uploader) single(ctx context.Context) error {
	size := u.size
	req := &sighttp.PresignRequest{
		Operation: "upload",
		Objects:   []sighttp.ObjectRequest{{Key: u.key, Size: &size, ContentType: u.o.ContentType, SHA256: u.sum}},
	}
	sign := func(ctx context.Context) (*target, error) { return u.presign(ctx, req) }
	t, err := sign(ctx)
	if err != nil {
		return err
	}
	_, err = u.put(ctx, t, sign, u.name(), 0, size)
	return err
}

// put sends size bytes of the source at off with t, retrying transient
// failures and renewing the URL with sign after a first 403. It returns
// the ETag the store answered.
func (u *uploader) put(ctx context.Context, t *target, sign signer, what string, off, size int64) (string, error) {
	m := u.prog.meter()
	body := func() io.Reader {
		var r io.Reader = io.NewSectionReader(u.src, off, size)
		if u.prog.fn != nil {
			r = &meterReader{m: m, r: r}
		}
		return r
	}
	rt := &retrier{j: &u.job, what: what}
	for {
		if t.stale(time.Now()) {
			nt, err := sign(ctx)
			if err != nil {
				return "", err
			}
			t = nt
		}
		req, err := u.newRequest(ctx, t, body, size)
		if err != nil {
			return "", err
		}
		resp, err := u.o.HTTP.Do(req)
		if err != nil {
			if err := rt.transient(ctx, sanitize(err, t), 0); err != nil {
				return "", err
			}
			continue
		}
		switch classify(resp.StatusCode) {
		case statusOK:
			etag := resp.Header.Get("ETag")
			discard(resp)
			return etag, nil
		case statusRefused:
			discard(resp)
			if err := rt.refused(resp); err != nil {
				return "", err
			}
			if t, err = sign(ctx); err != nil {
				return "", err
			}
		case statusTransient:
			serr := u.storeError(what, resp)
			wish := retryAfter(resp)
			discard(resp)
			if err := rt.transient(ctx, serr, wish); err != nil {
				return "", err
			}
		default:
			serr := u.storeError(what, resp)
			discard(resp)
			return "", serr
		}
	}
}

// chunked uploads the object in parts and returns the number of parts.
func (u *uploader) chunked(ctx context.Context) (int, error) {
	info, err := u.c.CreateUpload(ctx, u.team, &sighttp.CreateUploadRequest{
		Key: u.key, Size: u.size, ContentType: u.o.ContentType, SHA256: u.sum, PartSize: u.o.PartSize,
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", u.name(), err)
	}
	err = u.checkPlan(info)
	var etags []string
	if err == nil {
		etags, err = u.sendParts(ctx, info)
	}
	if err == nil {
		err = u.complete(ctx, info, etags)
	}
	if err != nil {
		// Best effort: the server collects abandoned uploads in any case.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		u.c.AbortUpload(actx, u.team, info.ID)
		cancel()
		return 0, err
	}
	return info.PartCount, nil
}

// checkPlan checks that the server's plan covers exactly the object.
func (u *uploader) checkPlan(info *sighttp.UploadInfo) error {
	if info.PartSize <= 0 || info.PartCount < 1 ||
		int64(info.PartCount) != (u.size+info.PartSize-1)/info.PartSize {
		return u.errorf(signet.Internal, nil, "server planned %d parts of %d bytes for %d bytes of %s", info.PartCount, info.PartSize, u.size, u.name())
	}
	return nil
}

// partRange returns the offset and size of part n (1-based).
func partRange(info *sighttp.UploadInfo, size int64, n int) (off, length int64) {
	off = int64(n-1) * info.PartSize
	return off, min(info.PartSize, size-off)
}

// sendParts uploads every part with Concurrency workers and returns the
// parts' ETags in part order. One goroutine mints part URLs in batches,
// just ahead of the workers.
func (u *uploader) sendParts(ctx context.Context, info *sighttp.UploadInfo) ([]string, error) {
	g, ctx := newGroup(ctx)
	jobs := make(chan sighttp.PartURL)
	g.Go(func() error {
		defer close(jobs)
		for first := 1; first <= info.PartCount; first += partBatch {
			nums := make([]int, 0, partBatch)
			for n := first; n < first+partBatch && n <= info.PartCount; n++ {
				nums = append(nums, n)
			}
			parts, err := u.partURLs(ctx, info, nums)
			if err != nil {
				return err
			}
			for _, p := range parts {
				select {
				case jobs <- p:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
		}
		return nil
	})
	etags := make([]string, info.PartCount)
	for range min(u.o.Concurrency, info.PartCount) {
		g.Go(func() error {
			for p := range jobs {
				etag, err := u.part(ctx, info, p)
				if err != nil {
					return err
				}
				etags[p.Number-1] = etag
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return etags, nil
}

// partURLs mints URLs for the parts nums and checks that they are what was
// asked for.
func (u *uploader) partURLs(ctx context.Context, info *sighttp.UploadInfo, nums []int) ([]sighttp.PartURL, error) {
	var resp *sighttp.PartsResponse
	err := u.api(ctx, func() (err error) {
		resp, err = u.c.UploadParts(ctx, u.team, info.ID, nums)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Parts) != len(nums) {
		return nil, u.errorf(signet.Internal, nil, "server answered %d part URLs for %d parts of %s", len(resp.Parts), len(nums), u.name())
	}
	for i, p := range resp.Parts {
		_, size := partRange(info, u.size, nums[i])
		if p.Number != nums[i] || p.Size != size || p.URL == "" || p.Method != http.MethodPut {
			return nil, u.errorf(signet.Internal, nil, "server answered an unexpected URL for part %d of %s", nums[i], u.name())
		}
	}
	return resp.Parts, nil
}

// part uploads one part and returns its ETag.
func (u *uploader) part(ctx context.Context, info *sighttp.UploadInfo, p sighttp.PartURL) (string, error) {
	what := fmt.Sprintf("part %d of %s", p.Number, u.name())
	sign := func(ctx context.Context) (*target, error) {
		ps, err := u.partURLs(ctx, info, []int{p.Number})
		if err != nil {
			return nil, err
		}
		return partTarget(&ps[0]), nil
	}
	off, size := partRange(info, u.size, p.Number)
	etag, err := u.put(ctx, partTarget(&p), sign, what, off, size)
	if err == nil && etag == "" {
		// Typically a CORS or proxy setup that hides the header.
		err = u.errorf(signet.Internal, nil, "%s: store answered without an ETag", what)
	}
	return etag, err
}

func partTarget(p *sighttp.PartURL) *target {
	return &target{method: p.Method, url: p.URL, headers: p.Headers, expires: p.ExpiresAt}
}

// complete assembles the parts. If the answer is lost, the upload's state
// tells whether the server completed it.
func (u *uploader) complete(ctx context.Context, info *sighttp.UploadInfo, etags []string) error {
	parts := make([]sighttp.CompletePart, len(etags))
	for i, e := range etags {
		parts[i] = sighttp.CompletePart{Number: i + 1, ETag: e}
	}
	var err error
	for attempt := 1; ; attempt++ {
		_, err = u.c.CompleteUpload(ctx, u.team, info.ID, parts)
		if err == nil || signet.ErrorCode(err) != signet.Unavailable || ctx.Err() != nil {
			break
		}
		st, serr := u.c.UploadState(ctx, u.team, info.ID)
		if serr == nil && st.State == signet.UploadCompleted {
			return nil
		}
		if attempt == apiAttempts {
			break
		}
		if serr := sleep(ctx, backoff(attempt, 0)); serr != nil {
			return serr
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("completing %s: %w", u.name(), err)
	}
	return nil
}
