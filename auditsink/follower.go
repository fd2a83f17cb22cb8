// Package auditsink streams the committed audit log to sinks: a file of
// JSON lines with rotation, standard output, or an HTTP webhook with a
// bounded on-disk spool.
//
// Each sink is a follower: it reads the log from the store in seq order
// after its own cursor, delivers the entries, and only then saves the
// cursor (a small file under the data directory, written atomically). It
// is woken after commits of this process and polls for entries other
// replicas append. Request handling never waits for a sink, and a sink
// that fails or falls behind loses nothing: the log itself is the buffer.
// Delivery is at least once; every line carries seq and hash, so a
// receiver can drop repeats.
package auditsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/internal/retry"
)

// Options are what New needs besides the sinks' configs.
type Options struct {
	// Store is the audit log to follow. Required.
	Store signet.Store
	// Dir holds each sink's cursor and spool (serve uses
	// <data_dir>/audit-sinks). Required.
	Dir string
	// Logger receives progress and failures; never header values.
	Logger *slog.Logger
	// Stdout is where a stdout sink writes; os.Stdout when nil.
	Stdout io.Writer
	// Getenv expands ${NAME} in webhook headers; os.Getenv when nil.
	Getenv func(string) string
	// Registerer, when set, receives the sinks' metrics.
	Registerer prometheus.Registerer
	// Now is the clock for rotated file names; time.Now when nil.
	Now func() time.Time
}

// Set is the running sinks of a server.
type Set struct {
	followers []*follower
	metrics   *metrics
	closeOnce sync.Once
	closeErr  error
}

// line is one audit entry as a JSON line, with its newline.
type line struct {
	seq  int64
	hash signet.AuditHash
	data []byte
}

// sink is one destination.
type sink interface {
	// write makes lines, in seq order, durable at the destination (or in
	// its spool) and returns how many it took, in order. Fewer than all
	// come with an error: errFull when a bounded buffer is full.
	write(ctx context.Context, lines []line) (int, error)
	close() error
}

// buffered is a sink that takes lines into a buffer and delivers them in
// the background.
type buffered interface {
	sink
	// run delivers the buffer until ctx is done.
	run(ctx context.Context)
	// space is signalled when the buffer drains.
	space() <-chan struct{}
	// acked returns the seq up to which the destination has the entries,
	// and false when nothing is buffered (the cursor is then exact).
	acked() (int64, bool)
}

// errFull: the sink's buffer is full; wait for space.
var errFull = errors.New("audit sink buffer is full")

// New validates the configs and opens the sinks (files, spools, cursors),
// so that a bad config or an unreadable cursor fails at startup. Nothing
// is read or delivered until Run.
func New(configs []Config, opt Options) (s *Set, err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Getenv == nil {
		opt.Getenv = os.Getenv
	}
	if opt.Stdout == nil {
		opt.Stdout = os.Stdout
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := Validate(configs, opt.Getenv); err != nil {
		return nil, err
	}
	s = &Set{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if len(configs) == 0 {
		return s, nil
	}
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit sinks: %w", err)
	}
	m := newMetrics(opt.Registerer)
	s.metrics = m
	for _, c := range configs {
		c, _ = c.withDefaults(opt.Getenv)
		log := opt.Logger.With("sink", c.Name)
		f := &follower{
			cfg: c, store: opt.Store, log: log, wake: make(chan struct{}, 1),
			cursorPath: filepath.Join(opt.Dir, c.Name+".cursor"),
			lag:        m.lag.WithLabelValues(c.Name), delivered: m.delivered.WithLabelValues(c.Name),
			failures: m.failures.WithLabelValues(c.Name),
		}
		f.open = func() (sink, error) {
			switch c.Type {
			case TypeFile:
				return openFile(c, opt.Now)
			case TypeWebhook:
				return openWebhook(c, filepath.Join(opt.Dir, c.Name+".spool"), log, f.delivered, f.failures,
					m.spool.WithLabelValues(c.Name), f.updateLag)
			default:
				return &writerSink{w: opt.Stdout}, nil
			}
		}
		s.followers = append(s.followers, f)
		ok, err := f.acquire(filepath.Join(opt.Dir, c.Name+".lock"))
		if err != nil {
			return nil, fmt.Errorf("audit sink %q: %w", c.Name, err)
		}
		if !ok {
			log.Warn("another process sharing the data directory runs this audit sink; standing by")
		}
	}
	return s, nil
}

// acquire takes the sink's lock, so that two processes sharing a data
// directory never run one sink, then reads the cursor and opens the sink.
// ok is false when another process holds the lock.
func (f *follower) acquire(lockPath string) (ok bool, err error) {
	f.lockPath = lockPath
	lock, ok, err := lockFile(lockPath)
	if !ok || err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if f.cur, f.hasCursor, err = readCursor(f.cursorPath); err != nil {
		return false, err
	}
	f.curSeq.Store(f.cur.Seq)
	if f.sink, err = f.open(); err != nil {
		return false, err
	}
	f.lock = lock
	f.active.Store(true)
	return true, nil
}

// Register registers the sinks' metrics with reg (when Options had no
// Registerer).
func (s *Set) Register(reg prometheus.Registerer) error {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.register(reg)
}

// Notify wakes every sink to read what was just committed. It never
// blocks.
func (s *Set) Notify() {
	for _, f := range s.followers {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// Run follows the log until ctx is done, then closes the sinks.
func (s *Set) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range s.followers {
		wg.Go(func() {
			for f.sink == nil {
				// Standing by: take over when the other process ends.
				retry.Sleep(ctx, f.cfg.PollInterval)
				if ctx.Err() != nil {
					return
				}
				ok, err := f.acquire(f.lockPath)
				if err != nil {
					f.log.Error("audit sink cannot start", "err", err)
				} else if ok {
					f.log.Info("audit sink taken over from another process")
				}
			}
			if b, ok := f.sink.(buffered); ok {
				wg.Go(func() { b.run(ctx) })
			}
			f.run(ctx)
		})
	}
	wg.Wait()
	s.Close()
}

// Close closes the sinks. Run calls it when it returns.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, f := range s.followers {
			if f.sink != nil {
				errs = append(errs, f.sink.close())
			}
			if f.lock != nil {
				f.lock.Close()
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// NotifyStore returns store, calling notify after every Update, so that
// sinks see a commit at once rather than at their next poll.
func NotifyStore(store signet.Store, notify func()) signet.Store {
	return notifyStore{store, notify}
}

type notifyStore struct {
	signet.Store
	notify func()
}

func (s notifyStore) Update(ctx context.Context, fn func(signet.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	// Also on error: an Update that timed out may still have committed.
	s.notify()
	return err
}

// follower reads the log after its cursor and hands entries to its sink.
type follower struct {
	cfg        Config
	sink       sink
	store      signet.Store
	log        *slog.Logger
	wake       chan struct{}
	cursorPath string
	lockPath   string
	lock       *os.File             // held while this process runs the sink
	open       func() (sink, error) // opens the sink
	active     atomic.Bool          // this process runs the sink
	cur        cursor
	hasCursor  bool
	curSeq     atomic.Int64 // cur.Seq, for the lag gauge
	head       atomic.Int64 // the log's last seq as last read

	lag       prometheus.Gauge
	delivered prometheus.Counter
	failures  prometheus.Counter
}

// cursor is the last entry a sink has taken.
type cursor struct {
	Seq  int64            `json:"seq"`
	Hash signet.AuditHash `json:"hash"`
}

func (f *follower) run(ctx context.Context) {
	attempt := 0
	var pending []line
	full := false    // the last read filled a batch
	stalled := false // the sink's buffer was full
	for ctx.Err() == nil {
		if len(pending) == 0 {
			if !full {
				// Under a trickle of commits, gather them for a moment:
				// one read, write and fsync per batch, not per commit.
				retry.Sleep(ctx, f.cfg.linger)
			}
			evs, err := f.read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn("audit sink cannot read the audit log; will retry", "err", err)
				}
				f.wait(ctx, nil)
				continue
			}
			if len(evs) == 0 {
				f.wait(ctx, nil)
				continue
			}
			full = len(evs) == f.cfg.Batch
			if pending, err = f.lines(evs); err != nil {
				f.log.Error("audit sink cannot encode an entry; will retry", "seq", evs[0].Seq, "err", err)
				f.wait(ctx, nil)
				continue
			}
		}
		n, err := f.sink.write(ctx, pending)
		if n > 0 {
			attempt = 0
			if _, ok := f.sink.(buffered); !ok {
				f.delivered.Add(float64(n))
			}
			f.advance(pending[n-1])
			pending = pending[n:]
		}
		if stalled && err == nil {
			stalled = false
			f.log.Info("audit sink buffer has room again; reading the log")
		}
		switch {
		case err == nil:
		case errors.Is(err, errFull):
			if !stalled {
				stalled = true
				f.log.Warn("audit sink buffer is full: the sink falls behind the log (nothing is dropped) until the destination takes batches",
					"after_seq", f.cur.Seq)
			}
			b := f.sink.(buffered)
			f.wait(ctx, b.space())
		case ctx.Err() != nil:
		default:
			f.failures.Inc()
			d := retry.Backoff(time.Second, time.Minute, attempt)
			attempt++
			f.log.Warn("audit sink write failed; will retry", "err", err, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
			retry.Sleep(ctx, d)
		}
	}
}

// read returns the next entries after the cursor and records the head.
func (f *follower) read(ctx context.Context) ([]*signet.AuditEvent, error) {
	var evs []*signet.AuditEvent
	var head signet.AuditHead
	err := f.store.View(ctx, func(tx signet.Tx) (err error) {
		if head, err = tx.AuditHead(); err != nil {
			return err
		}
		if !f.hasCursor && f.cfg.Start == StartEnd {
			return nil
		}
		evs, err = tx.Audit(signet.AuditFilter{AfterID: f.cur.Seq, Limit: f.cfg.Batch})
		return err
	})
	if err != nil {
		return nil, err
	}
	f.head.Store(head.Seq)
	if !f.hasCursor && f.cfg.Start == StartEnd {
		f.log.Info("audit sink starts at the end of the log", "after_seq", head.Seq)
		f.advance(line{seq: head.Seq, hash: head.Hash})
		return nil, nil
	}
	f.updateLag()
	return evs, nil
}

// lines encodes evs as the lines of `signet audit export`, noting entries
// pruned before the sink took them and a log that no longer continues
// from the cursor. A sink without a cursor has taken nothing yet and
// starts at the first entry still in the log ("beginning"), so entries
// pruned before that are not missing from it.
func (f *follower) lines(evs []*signet.AuditEvent) ([]line, error) {
	first := evs[0]
	switch {
	case !f.hasCursor:
		f.log.Info("audit sink starts at the first entry in the log", "seq", first.Seq)
	case first.Seq > f.cur.Seq+1:
		f.log.Warn("audit entries were removed from the log before this sink delivered them; continuing with the first one left",
			"missing_from", f.cur.Seq+1, "missing_to", first.Seq-1)
	case f.cur.Seq > 0 && first.Seq == f.cur.Seq+1 && f.cur.Hash != (signet.AuditHash{}) && first.PrevHash != f.cur.Hash:
		f.log.Error("audit log does not continue from the last entry this sink delivered: it was changed; run signet audit verify",
			"seq", first.Seq)
	}
	out := make([]line, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out[i] = line{seq: e.Seq, hash: e.Hash, data: append(b, '\n')}
	}
	return out, nil
}

// advance moves the cursor past l and saves it.
func (f *follower) advance(l line) {
	f.cur = cursor{Seq: l.seq, Hash: l.hash}
	f.hasCursor = true
	f.curSeq.Store(l.seq)
	f.updateLag()
	if err := writeCursor(f.cursorPath, f.cur); err != nil {
		// The sink has the entries; after a restart it may get some again.
		f.failures.Inc()
		f.log.Error("audit sink cannot save its cursor", "err", err)
	}
}

// updateLag sets the lag gauge: entries in the log the destination does
// not have yet.
func (f *follower) updateLag() {
	done := f.curSeq.Load()
	if b, ok := f.sink.(buffered); ok {
		if a, pending := b.acked(); pending {
			done = a
		}
	}
	f.lag.Set(float64(max(f.head.Load()-done, 0)))
}

// wait blocks until a commit notification, the poll interval, space (when
// not nil) or the end of ctx.
func (f *follower) wait(ctx context.Context, space <-chan struct{}) {
	t := time.NewTimer(f.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-f.wake:
	case <-t.C:
		if space != nil {
			// Stuck on a full buffer: keep the lag current.
			f.store.View(ctx, func(tx signet.Tx) error {
				h, err := tx.AuditHead()
				if err == nil {
					f.head.Store(h.Seq)
					f.updateLag()
				}
				return err
			})
		}
	case <-space:
	}
}

// readCursor reads a saved cursor; ok is false when there is none.
func readCursor(path string) (c cursor, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("reading cursor: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Seq < 0 {
		return c, false, fmt.Errorf("cursor %s is damaged (remove it to deliver the log again from the start): %v", path, err)
	}
	return c, true, nil
}

// writeCursor saves c atomically and durably: temporary file, fsync,
// rename, fsync of the directory.
func writeCursor(path string, c cursor) error {
	b, _ := json.Marshal(c)
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}
