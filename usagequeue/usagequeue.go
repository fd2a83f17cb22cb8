// Package usagequeue stores the usage events a store reports of its own
// requests (the built-in local store, fileblob.Options.OnServe) in the
// metadata store without holding up those requests: Add hands an event to
// a bounded queue and returns at once, and one goroutine stores what is
// queued in batches. When the queue is full, events are dropped and
// counted; Close stores what is queued before it returns. See
// docs/audit.md, "Issued versus used".
package usagequeue

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signetdev/signet"
)

// Defaults of Options.
const (
	DefaultSize    = 10000
	DefaultBatch   = 1000 // as many as one ingest transaction (http.ingestBatch)
	DefaultTimeout = 10 * time.Second
)

// A batch the store refused is tried this many times in all, waiting
// retryWait, then twice as long, between attempts, then dropped.
const (
	attempts  = 3
	retryWait = 200 * time.Millisecond
)

// Options configures a Queue. Zero values take the defaults.
type Options struct {
	// Size is how many events may wait to be stored; more are dropped.
	Size int
	// Batch is the most events one transaction stores.
	Batch int
	// Timeout bounds each attempt to store a batch.
	Timeout time.Duration
	// Logger receives store errors and, at most once a minute, a warning
	// that events were dropped.
	Logger *slog.Logger
}

// Queue stores usage events in the background. It is safe for concurrent
// use.
type Queue struct {
	store   signet.Store
	batch   int
	timeout time.Duration
	log     *slog.Logger

	mu     sync.RWMutex // read-held to send on ch, write-held to close it
	closed bool
	ch     chan *signet.UsageEvent
	done   chan struct{} // closed when the last batch is stored

	stored, dropped, failed atomic.Int64
	lastWarn                atomic.Int64 // Unix nanoseconds of the last drop warning
}

// New returns a Queue that stores events in store through signet.UsageOf,
// and starts its goroutine; Close stops it.
func New(store signet.Store, opts Options) *Queue {
	size := opts.Size
	if size <= 0 {
		size = DefaultSize
	}
	q := &Queue{
		store:   store,
		batch:   opts.Batch,
		timeout: opts.Timeout,
		log:     opts.Logger,
		ch:      make(chan *signet.UsageEvent, size),
		done:    make(chan struct{}),
	}
	if q.batch <= 0 {
		q.batch = DefaultBatch
	}
	if q.timeout <= 0 {
		q.timeout = DefaultTimeout
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	go q.run()
	return q
}

// Add queues e to be stored and returns at once: it never waits for the
// store. When the queue is full, or closed, e is dropped and counted
// (Dropped). The Queue owns e afterwards.
func (q *Queue) Add(e *signet.UsageEvent) {
	q.mu.RLock()
	queued := false
	if !q.closed {
		select {
		case q.ch <- e:
			queued = true
		default:
		}
	}
	q.mu.RUnlock()
	if !queued {
		q.drop()
	}
}

// drop counts a dropped event and warns at most once a minute.
func (q *Queue) drop() {
	n := q.dropped.Add(1)
	now := time.Now().UnixNano()
	last := q.lastWarn.Load()
	if now-last >= int64(time.Minute) && q.lastWarn.CompareAndSwap(last, now) {
		q.log.Warn("usage events of the local store dropped: the queue is full (the metadata store is slow or down) or closed",
			"dropped_total", n, "queue_size", cap(q.ch))
	}
}

// Close stops taking events, stores those queued and returns when they
// are stored or dropped. If a batch fails while closing, the events still
// queued are dropped (counted by Failed) rather than each waiting for a
// store that is down. Close may be called more than once.
func (q *Queue) Close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
	return nil
}

// Stored returns how many events were stored (duplicates not counted);
// Dropped how many were not queued because the queue was full or closed;
// Failed how many were dropped because the store refused their batch.
func (q *Queue) Stored() int64  { return q.stored.Load() }
func (q *Queue) Dropped() int64 { return q.dropped.Load() }
func (q *Queue) Failed() int64  { return q.failed.Load() }

// Register exports the counts as Prometheus counters.
func (q *Queue) Register(reg prometheus.Registerer) error {
	const dropHelp = "Usage events of the local store that were not stored: queue_full when the queue was full (or closed), store_error when the metadata store refused their batch."
	counter := func(name, help string, labels prometheus.Labels, read func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(read()) })
	}
	for _, c := range []prometheus.Collector{
		counter("signet_usage_events_stored_total", "Usage events of the local store stored in the metadata store.", nil, q.Stored),
		counter("signet_usage_events_dropped_total", dropHelp, prometheus.Labels{"reason": "queue_full"}, q.Dropped),
		counter("signet_usage_events_dropped_total", dropHelp, prometheus.Labels{"reason": "store_error"}, q.Failed),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// run stores what is queued, as much as a batch holds at a time, until
// the queue is closed and empty.
func (q *Queue) run() {
	defer close(q.done)
	batch := make([]*signet.UsageEvent, 0, q.batch)
	giveUp := false
	for e := range q.ch {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < q.batch {
			select {
			case e, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if giveUp {
			q.failed.Add(int64(len(batch)))
			continue
		}
		if !q.save(batch) {
			// Decided before the batch is counted, so that an event
			// added after it shows as failed is not given up on.
			giveUp = q.isClosed()
			q.failed.Add(int64(len(batch)))
		}
	}
}

func (q *Queue) isClosed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// save stores batch, trying again after a while when the store fails
// with an error that may pass. It reports whether the batch was stored;
// if not, it is logged.
func (q *Queue) save(batch []*signet.UsageEvent) bool {
	var err error
	tried := 0
	for i := range attempts {
		tried++
		if i > 0 {
			time.Sleep(retryWait << (i - 1))
		}
		var n int
		if n, err = q.append(batch); err == nil {
			q.stored.Add(int64(n))
			return true
		}
		if c := signet.ErrorCode(err); c == signet.Invalid || c == signet.Unimplemented || c == signet.PermissionDenied {
			break
		}
	}
	// The events hold no secret (no query, signature or header), so
	// neither can an error about them.
	q.log.Error("storing usage events of the local store; the batch is dropped",
		"events", len(batch), "attempts", tried, "err", err)
	return false
}

// append stores batch in one transaction.
func (q *Queue) append(batch []*signet.UsageEvent) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	var n int
	err := q.store.Update(ctx, func(tx signet.Tx) error {
		u, err := signet.UsageOf(tx)
		if err != nil {
			return err
		}
		n, err = u.AppendUsage(batch...)
		return err
	})
	return n, err
}
