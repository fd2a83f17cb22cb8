// Package transfer moves objects between local data and a team's store
// through signet's pre-signed URLs. It is the engine behind `signet cp`,
// and what a program imports to move big files itself. A training job
// saves a checkpoint in three lines:
//
//	c := sighttp.NewClient(os.Getenv("SIGNET_ADDR"), os.Getenv("SIGNET_TOKEN"))
//	_, err := transfer.UploadFile(ctx, c, "ml", "ckpt/step-100.pt", "step-100.pt", nil)
//	if err != nil { /* handle the error */ }
//
// where sighttp is github.com/signetdev/signet/http. Loading it back is
// transfer.DownloadFile(ctx, c, "ml", "ckpt/step-100.pt", "step-100.pt", nil).
//
// Uploads declare the object's SHA-256 so that the store verifies what it
// receives. Objects above a threshold go as a chunked upload: part URLs are
// minted lazily in small batches, parts move in parallel, each part is
// retried on network errors and 5xx answers, and a part whose URL is refused
// (it may have expired) gets one fresh URL. With Options.ResumeDir set, an
// interrupted chunked upload of a file keeps its session, and running the
// same upload again sends only the parts the store does not hold yet.
// Downloads are hashed as they stream, checked against the SHA-256 signet
// or the store reports where one is known (Result.Verified), and resume
// with a Range request after a broken connection; DownloadFile fetches
// large objects in parallel ranges and never leaves a partial file at its
// destination. DownloadDir fetches every object below a prefix into a
// directory, several files at once, and skips files already complete.
//
// Errors are *signet.Error values (possibly wrapped; use signet.ErrorCode):
// errors from signet's API keep the server's code; a store's refusal of a
// freshly signed URL is PermissionDenied; a request still failing after its
// retries is Unavailable; a missing object is NotFound; bytes that do not
// match the declared SHA-256 are ChecksumMismatch; an object that changes
// during a download is Conflict. When ctx is cancelled the context's cause
// is returned. Signed URLs are bearer secrets: no error returned by this
// package contains one, nor does any file it writes. Errors name the team,
// key, part number and HTTP status only.
package transfer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// Defaults for Options fields left zero.
const (
	// DefaultConcurrency is the number of parts moved in parallel.
	DefaultConcurrency = 4
	// DefaultThreshold is the size above which objects move in parts.
	DefaultThreshold = 64 << 20
	// DefaultRangeSize is the size of each ranged GET of a parallel
	// download when Options.PartSize is zero.
	DefaultRangeSize = 16 << 20
)

// Options tunes a transfer. The zero value (or a nil *Options) is ready to
// use.
type Options struct {
	// Concurrency is the number of parts moved in parallel; 0 means
	// DefaultConcurrency.
	Concurrency int
	// PartSize is the part size requested for chunked uploads; 0 lets the
	// server choose. Parallel downloads fetch ranges of this size
	// (DefaultRangeSize when 0).
	PartSize int64
	// Threshold is the size above which an object is uploaded in parts,
	// and above which DownloadFile fetches it in parallel ranges. 0 means
	// PartSize when that is set (asking for parts of a size means using
	// them for anything larger), DefaultThreshold otherwise; a negative
	// value sends every non-empty object in parts. Objects above
	// sighttp.MaxSinglePut always go in parts.
	Threshold int64
	// HTTP is the client for store URLs. It must not add credentials of its
	// own and must not decompress bodies transparently (set
	// http.Transport.DisableCompression). When nil, a shared client tuned
	// for large transfers is used.
	HTTP *http.Client
	// Progress, when set, is called as bytes move with the bytes moved so
	// far and the total (-1 while a download's size is unknown). Calls are
	// serialized, never concurrent; done never decreases, and a transfer of
	// known size that succeeds ends with a call where done equals total
	// (a first call reports the bytes already done once the total is known:
	// 0, or for a resumed upload the size of the parts the store holds).
	// Bytes resent by a retry are not counted twice. Progress runs on the
	// goroutines that move the data, so it should return quickly.
	Progress func(done, total int64)
	// ContentType is bound to uploads: the store accepts the object only
	// with exactly this Content-Type. Empty means none is bound.
	ContentType string
	// ResumeDir, when set, makes chunked uploads by UploadFile resumable:
	// while one is in flight, a small state file in this directory
	// (created 0700 if missing; files 0600) records its session id, plan
	// and the file's SHA-256, never an API key or a URL. A later
	// UploadFile of the same unchanged file to the same key, team, server
	// and part size continues that session and sends only the parts the
	// store does not hold. An interrupted upload (ctx cancelled, the
	// process killed, the store or server unavailable) then keeps its
	// session instead of aborting it; the server aborts sessions nobody
	// resumes once their deadline passes. The state file is removed when
	// the upload completes or is aborted, and state files made useless by
	// a changed file are removed (their sessions aborted) by the next
	// upload of that file. Empty disables resuming: a failed chunked
	// upload is aborted at once.
	ResumeDir string
}

// Result describes a completed transfer.
type Result struct {
	// Key is the object's key in the team's space.
	Key string `json:"key"`
	// Size is the object's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the bytes moved.
	SHA256 string `json:"sha256"`
	// Parts is the number of parts or ranges the object moved in; 1 when it
	// moved in a single request.
	Parts int `json:"parts"`
	// ResumedParts is the number of parts of a resumed upload that the
	// store held already and that were not sent again.
	ResumedParts int `json:"resumed_parts"`
	// Verified reports whether SHA256 was checked against the store. An
	// upload is always verified: the SHA-256 is declared, the store (or
	// the server, when assembling parts) refuses other bytes with
	// ChecksumMismatch, and a store that cannot check it refuses the
	// upload (Unimplemented) rather than ignore it. A download is verified
	// when signet (asked with the download URL) or the store's answer
	// reported the object's SHA-256 and the bytes received match it: the
	// local store knows every object's, S3 a single upload's and every
	// store a chunked upload's that signet completed with a SHA-256 (see
	// docs/transfer.md). Otherwise Verified is false and SHA256 is only the
	// hash of the bytes received.
	Verified bool `json:"verified"`
}

// withDefaults returns a copy of o with defaults applied, or an Invalid
// error.
func (o *Options) withDefaults(op string) (Options, error) {
	var v Options
	if o != nil {
		v = *o
	}
	switch {
	case v.Concurrency < 0:
		return v, &signet.Error{Op: op, Code: signet.Invalid, Msg: "concurrency must not be negative"}
	case v.PartSize < 0:
		return v, &signet.Error{Op: op, Code: signet.Invalid, Msg: "part size must not be negative"}
	}
	if v.Concurrency == 0 {
		v.Concurrency = DefaultConcurrency
	}
	if v.Threshold == 0 {
		v.Threshold = DefaultThreshold
		if v.PartSize > 0 {
			v.Threshold = v.PartSize
		}
	}
	if v.HTTP == nil {
		v.HTTP = defaultHTTP()
	}
	return v, nil
}

// defaultHTTP is the shared client for store URLs: no cookies, no
// credentials, no transparent decompression (the bytes hashed must be the
// stored bytes), larger buffers than net/http's 4 KiB for throughput, and
// enough idle connections per host to keep every part's connection.
var defaultHTTP = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 64
	t.WriteBufferSize = 256 << 10
	t.ReadBufferSize = 256 << 10
	// A store that accepted a whole body answers promptly; one that does
	// not is hung, and the part is retried.
	t.ResponseHeaderTimeout = 5 * time.Minute
	return &http.Client{Transport: t}
})

// job holds what every transfer of one object needs.
type job struct {
	op   string // "transfer.Upload", ...
	c    *sighttp.Client
	team string
	key  string
	o    Options
	prog *progress
}

// name is how errors refer to the object.
func (j *job) name() string { return fmt.Sprintf("%s/%s", j.team, j.key) }

// errorf returns an *Error of j's operation with a user-safe message.
func (j *job) errorf(code signet.Code, cause error, format string, args ...any) *signet.Error {
	return &signet.Error{Op: j.op, Code: code, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// progress reports bytes moved to Options.Progress, serialized.
type progress struct {
	fn    func(done, total int64)
	mu    sync.Mutex
	done  int64
	total int64
}

func newProgress(fn func(done, total int64), total int64) *progress {
	return &progress{fn: fn, total: total}
}

// start reports the total once it is known, with done bytes that need not
// move (the parts of a resumed upload that the store holds).
func (p *progress) start(total, done int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
	p.done += done
	p.fn(p.done, p.total)
}

// meter counts the bytes of one part or range across its attempts. It
// reports only bytes beyond the most that any earlier attempt moved, so the
// total never decreases and never counts a byte twice.
type meter struct {
	p    *progress
	high int64 // guarded by p.mu
}

func (p *progress) meter() *meter { return &meter{p: p} }

// reach records that an attempt has moved n bytes of this part.
func (m *meter) reach(n int64) {
	p := m.p
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > m.high {
		p.done += n - m.high
		m.high = n
		p.fn(p.done, p.total)
	}
}

// meterReader counts the bytes read through it for one attempt.
type meterReader struct {
	m *meter
	r io.Reader
	n int64
}

func (r *meterReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.n += int64(n)
		r.m.reach(r.n)
	}
	return n, err
}

// group runs goroutines that share a context, which is cancelled with the
// first error any of them returns. Wait returns that error.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelCauseFunc
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.once.Do(func() {
				g.err = err
				g.cancel(err)
			})
		}
	})
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	return g.err
}
