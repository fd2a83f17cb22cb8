package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/retry"
)

// partBatch is how many part URLs are minted per API call. URLs are minted
// lazily, one batch ahead of the workers, so that few are outstanding and
// none waits long enough to expire.
const partBatch = 16

// abortTimeout bounds the best-effort abort of a failed chunked upload.
const abortTimeout = 30 * time.Second

// UploadFile uploads the file at path as key in team. A path that is not a
// regular file (a pipe, a device) is uploaded as with UploadStream.
//
// With Options.ResumeDir set, a chunked upload of the file can be resumed:
// if an earlier call for the same file (same absolute path, size and
// modification time), key, team, server and part size was interrupted,
// UploadFile continues its session and sends only the parts the store does
// not hold yet. It then trusts the SHA-256 recorded by that call instead of
// reading the file a second time; should the file have changed without its
// size or time changing, the server refuses the assembled object
// (ChecksumMismatch) and the next call starts afresh. See Options.ResumeDir.
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
	var rs *resumer
	if o != nil && o.ResumeDir != "" {
		if rs, err = newResumer(o.ResumeDir, c.Addr, team, key, path, fi, o.PartSize); err != nil {
			return nil, err
		}
		rs.sweep(ctx, c)
	}
	return upload(ctx, c, team, key, f, fi.Size(), nil, o, rs)
}

// Upload uploads size bytes read from r as key in team. It reads r twice:
// once to compute the SHA-256 that the store then verifies, and once to send
// the bytes; r must not change in between. Parts read r concurrently, as
// io.ReaderAt allows.
//
// Objects up to Options.Threshold go in a single request. Larger ones go as
// a chunked upload; if it fails, the upload is aborted (best effort), so
// that the store does not keep its parts. Upload does not resume: only
// UploadFile knows a source well enough to recognise it in a later run.
func Upload(ctx context.Context, c *sighttp.Client, team, key string, r io.ReaderAt, size int64, o *Options) (*Result, error) {
	return upload(ctx, c, team, key, r, size, nil, o, nil)
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
	return upload(ctx, c, team, key, f, n, h.Sum(nil), o, nil)
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

	// For a resumable chunked upload: rs keeps its state file, and prev is
	// the state an earlier run left, if any. rs is nil when the upload
	// cannot be resumed.
	rs   *resumer
	prev *resumeState
}

// upload uploads r; sum, when not nil, is r's SHA-256, already known. rs,
// when not nil, makes a chunked upload resumable.
func upload(ctx context.Context, c *sighttp.Client, team, key string, r io.ReaderAt, size int64, sum []byte, o *Options, rs *resumer) (*Result, error) {
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
	chunked := size > 0 && (size > opts.Threshold || opts.Threshold < 0 || size > sighttp.MaxSinglePut)
	if chunked && rs != nil {
		u.rs = rs
		if u.prev = rs.load(); u.prev != nil && sum == nil {
			// The file is the one hashed by the earlier run: same path,
			// size and modification time.
			sum, _ = hex.DecodeString(u.prev.SHA256)
		}
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
	res := &Result{Key: key, Size: size, SHA256: u.sum, Parts: 1, Verified: true}
	if chunked {
		res.Parts, res.ResumedParts, err = u.chunked(ctx)
	} else {
		u.prog.start(size, 0)
		err = u.single(ctx)
		if signet.ErrorCode(err) == signet.Unimplemented && size > 0 {
			// The store cannot bind size and SHA-256 to a single upload
			// URL (Azure, GCS): send it as a one-part chunked upload,
			// which signet verifies when it completes.
			u.o.PartSize = max(size, minPartSize)
			res.Parts, res.ResumedParts, err = u.chunked(ctx)
		} else if signet.ErrorCode(err) == signet.Unimplemented {
			// An empty object cannot be chunked: send it unbound and
			// read it back (Azure).
			err = u.emptyUnbound(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// minPartSize is the smallest part size a chunked upload may ask for.
const minPartSize = 5 << 20

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

// chunked uploads the object in parts and returns the number of parts and
// how many of them the store held already.
//
// When the upload fails, its session is aborted (best effort), so that the
// store does not keep its parts, unless the upload is resumable and the
// failure may pass: a cancelled ctx, a store or server that stays
// unavailable, rate limiting, or an API key that is refused. Then the
// session and its state file stay for a rerun. Anything else (a checksum
// mismatch, a refused URL, an invalid request) aborts the session and
// removes the state file: a rerun would fail the same way.
func (u *uploader) chunked(ctx context.Context) (parts, resumed int, err error) {
	s, err := u.session(ctx)
	if err != nil {
		return 0, 0, err
	}
	u.prog.start(u.size, heldBytes(s.info, u.size, s.held))
	if !s.done {
		var etags []string
		etags, err = u.sendParts(ctx, s)
		if err == nil {
			err = u.complete(ctx, s.info, etags)
		}
	}
	if err != nil {
		if u.rs != nil && keepSession(ctx, err) {
			return 0, 0, err
		}
		u.abort(ctx, s.info.ID)
		return 0, 0, err
	}
	if u.rs != nil {
		u.rs.remove()
	}
	return s.info.PartCount, len(s.held), nil
}

// keepSession reports whether a resumable upload that failed with err
// keeps its session for a rerun.
func keepSession(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	switch signet.ErrorCode(err) {
	case signet.Unavailable, signet.RateLimited, signet.Unauthenticated:
		return true
	}
	return false
}

// abort aborts the session id (best effort: the server collects abandoned
// sessions in any case) and removes its state file.
func (u *uploader) abort(ctx context.Context, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	u.c.AbortUpload(actx, u.team, id)
	cancel()
	if u.rs != nil {
		u.rs.remove()
	}
}

// session is the upload session a chunked upload uses.
type session struct {
	info *sighttp.UploadInfo
	// held maps the parts that the store holds to their ETags.
	held map[int]string
	// minted holds URLs already minted for the first parts to send.
	minted []sighttp.PartURL
	// done is set when resuming found every part held and completed the
	// upload.
	done bool
}

// session returns the session to use: the one an earlier run recorded
// when it can be resumed, otherwise a new one.
func (u *uploader) session(ctx context.Context) (*session, error) {
	if u.prev != nil {
		s, err := u.resume(ctx, u.prev)
		if err != nil || s != nil {
			return s, err
		}
	}
	info, err := u.c.CreateUpload(ctx, u.team, &sighttp.CreateUploadRequest{
		Key: u.key, Size: u.size, ContentType: u.o.ContentType, SHA256: u.sum, PartSize: u.o.PartSize,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%s: %w", u.name(), err)
	}
	if err := u.checkPlan(info); err != nil {
		u.abort(ctx, info.ID)
		return nil, err
	}
	if u.rs != nil {
		if err := u.rs.save(info, u.sum); err != nil {
			// Without its state file nobody can resume the session: treat
			// the upload as one that is not resumable.
			u.rs.remove()
			u.rs = nil
		}
	}
	return &session{info: info}, nil
}

// resume continues the session an earlier run recorded in st. It returns
// nil when a new session must be started instead: the session is unknown,
// has ended or ends soon, or no longer matches this upload (then it is
// aborted). The state file of a session that is not resumed is removed.
//
// Whether the session is still open is the server's decision, by its own
// clock: resume mints the URLs of the first parts to send (or, when the
// store holds every part, completes the upload) before any byte moves, and
// a session the server reports as ended (Conflict) is replaced by a new one.
func (u *uploader) resume(ctx context.Context, st *resumeState) (*session, error) {
	var info *sighttp.UploadInfo
	err := u.api(ctx, func() (err error) {
		info, err = u.c.UploadState(ctx, u.team, st.UploadID)
		return err
	})
	switch signet.ErrorCode(err) {
	case "":
	case signet.NotFound, signet.Conflict:
		// Unknown to the server, or the team's connector has changed
		// since: the session cannot be continued.
		u.rs.remove()
		return nil, nil
	default:
		return nil, err
	}
	switch {
	case info.State != signet.UploadActive:
		u.rs.remove()
		return nil, nil
	case info.ID != st.UploadID || info.Key != u.key || info.Size != u.size ||
		info.PartSize != st.PlanSize || info.PartCount != st.PartCount ||
		!strings.EqualFold(info.SHA256, u.sum) || info.ContentType != u.o.ContentType ||
		u.checkPlan(info) != nil || time.Until(info.ExpiresAt) < resumeMargin:
		u.abort(ctx, st.UploadID)
		return nil, nil
	}
	s := &session{info: info, held: make(map[int]string)}
	for _, p := range info.Parts {
		if p.Number < 1 || p.Number > info.PartCount || p.ETag == "" {
			continue
		}
		// A part of another size is not the one this plan needs: send it
		// again.
		if _, size := partRange(info, u.size, p.Number); p.Size == size {
			s.held[p.Number] = p.ETag
		}
	}
	if todo := s.todo(); len(todo) > 0 {
		s.minted, err = u.partURLs(ctx, info, todo[:min(len(todo), partBatch)])
	} else {
		err = u.complete(ctx, info, s.etags())
		s.done = err == nil
	}
	if signet.ErrorCode(err) == signet.Conflict && ctx.Err() == nil {
		u.abort(ctx, st.UploadID)
		return nil, nil
	}
	if err != nil {
		if u.rs != nil && keepSession(ctx, err) {
			return nil, err
		}
		u.abort(ctx, st.UploadID)
		return nil, err
	}
	return s, nil
}

// todo returns the numbers of the parts the store does not hold.
func (s *session) todo() []int {
	var ns []int
	for n := 1; n <= s.info.PartCount; n++ {
		if _, ok := s.held[n]; !ok {
			ns = append(ns, n)
		}
	}
	return ns
}

// etags returns the ETags of the held parts in part order, "" for the
// others.
func (s *session) etags() []string {
	e := make([]string, s.info.PartCount)
	for n, etag := range s.held {
		e[n-1] = etag
	}
	return e
}

// heldBytes returns the size of the parts in held.
func heldBytes(info *sighttp.UploadInfo, size int64, held map[int]string) int64 {
	var n int64
	for num := range held {
		_, l := partRange(info, size, num)
		n += l
	}
	return n
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

// sendParts uploads every part of s that the store does not hold with
// Concurrency workers and returns all the parts' ETags in part order. One
// goroutine mints part URLs in batches, just ahead of the workers.
func (u *uploader) sendParts(ctx context.Context, s *session) ([]string, error) {
	info := s.info
	etags := s.etags()
	todo := s.todo()
	if len(todo) == 0 {
		return etags, nil
	}
	outer := ctx
	g, ctx := newGroup(ctx)
	jobs := make(chan sighttp.PartURL)
	g.Go(func() error {
		defer close(jobs)
		queue := func(parts []sighttp.PartURL) error {
			for _, p := range parts {
				select {
				case jobs <- p:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			return nil
		}
		if err := queue(s.minted); err != nil {
			return err
		}
		for batch := range slices.Chunk(todo[len(s.minted):], partBatch) {
			parts, err := u.partURLs(ctx, info, batch)
			if err != nil {
				return err
			}
			if err := queue(parts); err != nil {
				return err
			}
		}
		return nil
	})
	for range min(u.o.Concurrency, len(todo)) {
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
	if err := u.fillETags(outer, info, etags); err != nil {
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
	// Some stores answer a part without an ETag (Azure's Put Block);
	// sendParts then takes the part's ETag from the store's own list.
	return u.put(ctx, partTarget(&p), sign, what, off, size)
}

// fillETags completes etags from the parts the store lists, for stores
// whose part answers carry none (Azure Put Block). A part still without an
// ETag is an error: typically a CORS or proxy setup that hides the header.
func (u *uploader) fillETags(ctx context.Context, info *sighttp.UploadInfo, etags []string) error {
	if !slices.Contains(etags, "") {
		return nil
	}
	var st *sighttp.UploadInfo
	err := u.api(ctx, func() (err error) {
		st, err = u.c.UploadState(ctx, u.team, info.ID)
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range st.Parts {
		if p.Number >= 1 && p.Number <= len(etags) && etags[p.Number-1] == "" {
			etags[p.Number-1] = p.ETag
		}
	}
	if i := slices.Index(etags, ""); i >= 0 {
		return u.errorf(signet.Internal, nil, "part %d of %s: the store answered without an ETag and does not list the part", i+1, u.name())
	}
	return nil
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
		if serr := retry.Sleep(ctx, backoff(attempt, 0)); serr != nil {
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
