// Package sqlstore holds what the sqlite and postgres stores share that
// is plain Go, with no SQL in it: the queue of group commit.
package sqlstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/deadline"
)

// MaxBatch bounds how many Updates share one transaction.
const MaxBatch = 256

// fillYields is how many times the writer lets other goroutines run
// before it closes a batch that the queue has no more requests for: a
// commit delay that only costs time when there is other work to run
// (PostgreSQL's commit_delay waits a fixed time instead). Measured with
// scripts/bench-wrk on 2 cores (docs/performance.md, sitting 5): 9.5
// presigns per commit became 12.5-13 with 32 connections and 17 became
// 35 with 128; one connection's latency did not change. 4 did no better.
const fillYields = 2

// Request states: a request can be cancelled only while it waits.
const (
	waiting int32 = iota
	running
	cancelled
)

// Request is one Update, waiting for the writer or run by it.
type Request struct {
	Ctx   context.Context // the caller's, bounded by WriteTimeout
	Fn    func(signet.Tx) error
	Err   error // Fn's error, then the commit's
	state atomic.Int32
	done  chan struct{} // closed when Err is final
}

// Queue hands Updates to one writer goroutine, which runs the requests
// waiting at each moment as one batch. The zero Queue is not started.
type Queue struct {
	queue      chan *Request // Updates waiting for the writer
	closing    chan struct{} // closed by Stop
	writerDone chan struct{} // closed when the writer has stopped
	closeOnce  sync.Once
}

// Start starts the writer, which calls run with each batch of the
// requests waiting at that moment, at most MaxBatch of them. run claims
// the requests with Claim and ends them with Finish.
func (q *Queue) Start(run func([]*Request)) {
	q.queue = make(chan *Request)
	q.closing = make(chan struct{})
	q.writerDone = make(chan struct{})
	go q.writer(run)
}

// Stop stops the writer after the batch in progress; Submit fails from
// then on. It does nothing on a Queue that was not started.
func (q *Queue) Stop() {
	if q.queue == nil {
		return
	}
	q.closeOnce.Do(func() { close(q.closing) })
	<-q.writerDone
}

// Submit hands fn to the writer and returns its outcome. After Stop it
// returns Unavailable with op; when ctx ends before fn starts, ctxErr of
// the context's error. Once fn runs, its outcome is decided by the
// commit, which the writer bounds itself, and Submit waits for it.
func (q *Queue) Submit(ctx context.Context, op string, fn func(signet.Tx) error, ctxErr func(error) error) error {
	r := &Request{Ctx: ctx, Fn: fn, done: make(chan struct{})}
	select {
	case q.queue <- r:
	case <-q.closing:
		return signet.E(op, signet.Unavailable, "audit store unavailable: database is closed", nil)
	case <-ctx.Done():
		return ctxErr(ctx.Err())
	}
	select {
	case <-r.done:
		return r.Err
	case <-ctx.Done():
		if r.state.CompareAndSwap(waiting, cancelled) {
			return ctxErr(ctx.Err())
		}
		// fn already runs: its outcome is decided by the commit, which
		// is itself bounded by WriteTimeout; report that outcome.
		<-r.done
		return r.Err
	}
}

// writer runs batches of Updates until the queue is stopped.
func (q *Queue) writer(run func([]*Request)) {
	defer close(q.writerDone)
	reqs := make([]*Request, 0, MaxBatch)
	for {
		select {
		case r := <-q.queue:
			reqs = append(reqs[:0], r)
		case <-q.closing:
			return
		}
	fill:
		for yields := 0; len(reqs) < MaxBatch; {
			select {
			case r := <-q.queue:
				reqs = append(reqs, r)
			default:
				if yields == fillYields {
					break fill
				}
				// Let the goroutines ready to run submit theirs first:
				// under load, requests a moment from the queue join this
				// batch instead of paying for a commit of their own; when
				// nothing else is ready to run, this returns at once.
				yields++
				runtime.Gosched()
			}
		}
		run(reqs)
		clear(reqs) // let the requests go
	}
}

// Claim returns the requests of reqs whose callers still wait, marking
// them running: from here their callers wait for Finish.
func Claim(reqs []*Request) []*Request {
	var live []*Request
	for _, r := range reqs {
		if r.state.CompareAndSwap(waiting, running) {
			live = append(live, r)
		}
	}
	return live
}

// Run calls r.Fn with t and sets r.Err to what it returned: an Internal
// error with op if it panicked, so that one bad caller cannot stop the
// writer, and ctxErr of the caller's context error if it returned nil
// after the caller's deadline passed, so that the caller gets nothing
// committed.
func (r *Request) Run(op string, t signet.Tx, ctxErr func(error) error) {
	r.Err = call(op, r.Fn, t)
	if r.Err == nil {
		if err := deadline.Expired(r.Ctx); err != nil {
			r.Err = ctxErr(err)
		}
	}
}

func call(op string, fn func(signet.Tx) error, t signet.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = signet.E(op, signet.Internal, "internal error", fmt.Errorf("panic in Update: %v", p))
		}
	}()
	return fn(t)
}

// Finish ends the claimed requests live, giving err to those that have
// no error of their own.
func Finish(live []*Request, err error) {
	for _, r := range live {
		if r.Err == nil {
			r.Err = err
		}
		close(r.done)
	}
}
