package auditsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/internal/retry"
)

// webhook POSTs batches of JSON lines to a URL. The follower puts batches
// into a spool directory (one file each, written atomically and fsynced);
// a sender POSTs the oldest files and removes them once the receiver
// answered 2xx, retrying everything else with backoff. The spool is
// bounded: when full, write takes nothing and the follower waits, falling
// behind on the log, which still holds the entries.
type webhook struct {
	cfg    Config
	host   string // for logs: never the path, query or headers
	client *http.Client
	log    *slog.Logger
	dir    string

	delivered, failures prometheus.Counter
	spoolBytes          prometheus.Gauge
	onAck               func()

	mu    sync.Mutex
	files []spoolFile // oldest first
	bytes int64
	last  int64 // last seq spooled, ever (from file names at start)

	kick     chan struct{} // a file was spooled
	spaceCh  chan struct{} // files were removed
	maxBytes int64
}

type spoolFile struct {
	name        string
	first, last int64
	size        int64
	count       int
}

const spoolExt = ".jsonl"

func openWebhook(c Config, dir string, log *slog.Logger, delivered, failures prometheus.Counter, spoolBytes prometheus.Gauge, onAck func()) (*webhook, error) {
	u, _ := url.Parse(c.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	w := &webhook{
		cfg: c, host: u.Host, log: log.With("host", u.Host), dir: dir,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			// A redirect is a misconfiguration; following it could send
			// the headers somewhere else.
			return http.ErrUseLastResponse
		}},
		delivered: delivered, failures: failures, spoolBytes: spoolBytes, onAck: onAck,
		kick: make(chan struct{}, 1), spaceCh: make(chan struct{}, 1), maxBytes: int64(c.SpoolMaxSize),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, atomicfile.TempPrefix) {
			os.Remove(filepath.Join(dir, name)) // a spool write cut by a crash
			continue
		}
		var f spoolFile
		if n, _ := fmt.Sscanf(name, "%020d-%020d"+spoolExt, &f.first, &f.last); n != 2 || !strings.HasSuffix(name, spoolExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading spool: %w", err)
		}
		f.name, f.size, f.count = name, int64(len(b)), bytes.Count(b, []byte{'\n'})
		w.files = append(w.files, f)
		w.bytes += f.size
		w.last = max(w.last, f.last)
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].first < w.files[j].first })
	spoolBytes.Set(float64(w.bytes))
	if len(w.files) > 0 {
		log.Info("audit sink resumes with a spool", "files", len(w.files), "bytes", w.bytes)
	}
	return w, nil
}

// write spools as many lines as fit. Lines at or before the last one
// spooled (delivered again after a crash) are skipped.
func (w *webhook) write(ctx context.Context, lines []line) (int, error) {
	w.mu.Lock()
	skip := 0
	for skip < len(lines) && lines[skip].seq <= w.last {
		skip++
	}
	take, size := 0, int64(0)
	for _, l := range lines[skip:] {
		n := int64(len(l.data))
		if w.bytes+size+n > w.maxBytes && !(w.bytes == 0 && take == 0) {
			// Full. (A single line larger than the whole bound is taken
			// alone into an empty spool rather than never.)
			break
		}
		take++
		size += n
	}
	w.mu.Unlock()
	if take == 0 {
		if skip == len(lines) {
			return skip, nil
		}
		return skip, errFull
	}
	batch := lines[skip : skip+take]
	var buf bytes.Buffer
	for _, l := range batch {
		buf.Write(l.data)
	}
	f := spoolFile{first: batch[0].seq, last: batch[len(batch)-1].seq, size: size, count: take}
	f.name = fmt.Sprintf("%020d-%020d%s", f.first, f.last, spoolExt)
	if err := w.writeSpool(f.name, buf.Bytes()); err != nil {
		return skip, fmt.Errorf("writing spool: %w", err)
	}
	w.mu.Lock()
	w.files = append(w.files, f)
	w.bytes += f.size
	w.last = f.last
	w.spoolBytes.Set(float64(w.bytes))
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	if skip+take < len(lines) {
		return skip + take, errFull
	}
	return len(lines), nil
}

func (w *webhook) writeSpool(name string, data []byte) error {
	return atomicfile.WriteFile(filepath.Join(w.dir, name), data, 0o600)
}

func (w *webhook) space() <-chan struct{} { return w.spaceCh }

func (w *webhook) acked() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.files) == 0 {
		return 0, false
	}
	return w.files[0].first - 1, true
}

// run sends the spool, oldest first, until ctx is done.
func (w *webhook) run(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		batch, count := w.next()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-w.kick:
			}
			continue
		}
		var body bytes.Buffer
		ok := true
		for _, f := range batch {
			b, err := os.ReadFile(filepath.Join(w.dir, f.name))
			if err != nil {
				w.log.Error("audit sink cannot read its spool; will retry", "file", f.name, "err", err)
				ok = false
				break
			}
			body.Write(b)
		}
		err := errors.New("spool unreadable")
		var retryAfter time.Duration
		if ok {
			retryAfter, err = w.post(ctx, body.Bytes())
		}
		if err == nil {
			attempt = 0
			w.remove(batch)
			w.delivered.Add(float64(count))
			w.onAck()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.failures.Inc()
		d := retry.Backoff(w.cfg.BackoffMin, w.cfg.BackoffMax, attempt)
		// The receiver's Retry-After, when longer, within backoff_max.
		d = max(d, min(retryAfter, w.cfg.BackoffMax))
		attempt++
		w.log.Warn("audit webhook delivery failed; will retry", "err", err, "attempt", attempt,
			"first_seq", batch[0].first, "entries", count, "retry_in", d.Round(1e6))
		retry.Sleep(ctx, d)
	}
}

// next returns the oldest spool files, at least one, up to the batch size
// in entries.
func (w *webhook) next() ([]spoolFile, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, count := 0, 0
	for n < len(w.files) && (n == 0 || count+w.files[n].count <= w.cfg.Batch) {
		count += w.files[n].count
		n++
	}
	return append([]spoolFile(nil), w.files[:n]...), count
}

// remove deletes delivered files from the spool.
func (w *webhook) remove(batch []spoolFile) {
	for _, f := range batch {
		if err := os.Remove(filepath.Join(w.dir, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Sent again after a restart; the receiver drops repeats.
			w.log.Error("audit sink cannot remove a delivered spool file", "file", f.name, "err", err)
		}
	}
	w.mu.Lock()
	w.files = w.files[len(batch):]
	for _, f := range batch {
		w.bytes -= f.size
	}
	w.spoolBytes.Set(float64(w.bytes))
	w.mu.Unlock()
	select {
	case w.spaceCh <- struct{}{}:
	default:
	}
}

// post sends one batch. Only a 2xx answer counts as delivered; with
// another, retryAfter is the receiver's Retry-After, if it gave one in
// seconds.
func (w *webhook) post(ctx context.Context, body []byte) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("cannot build the request")
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL may hold a token in its query: report only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %v", w.cfg.Timeout)
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, fmt.Errorf("receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return 0, nil
}

func (w *webhook) close() error {
	w.client.CloseIdleConnections()
	return nil
}
