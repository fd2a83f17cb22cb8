package usagequeue_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/usagequeue"
)

// MustOpenDB opens a SQLite store in a temporary directory.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "signet.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var seq atomic.Int64

// event is a served GET of grant from addr, sending n bytes.
func event(grant, addr string, n int64) *signet.UsageEvent {
	return &signet.UsageEvent{
		Time: time.Now(), Source: signet.UsageSourceLocal, RequestID: fmt.Sprint("req-", seq.Add(1)),
		GrantID: grant, Bucket: "b", ObjectKey: "k", Method: "GET", Operation: "GetObject",
		Status: 200, BytesSent: n, RemoteAddr: addr,
	}
}

// usage returns the stored usage of grant, summed over its addresses.
func usage(t *testing.T, db signet.Store, grant string) (uses, failed, sent int64) {
	t.Helper()
	err := db.View(context.Background(), func(tx signet.Tx) error {
		u, err := signet.UsageOf(tx)
		if err != nil {
			return err
		}
		rows, err := u.GrantUsage([]string{grant})
		for _, r := range rows {
			uses, failed, sent = uses+r.Uses, failed+r.Failed, sent+r.BytesSent
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uses, failed, sent
}

// gatedStore is a store whose Updates wait for the gate to open (or for
// their context to end), after telling entered, and fail while fail is
// above zero, counting down.
type gatedStore struct {
	signet.Store
	entered chan struct{}
	gate    chan struct{}
	fail    atomic.Int64
	updates atomic.Int64
}

func newGatedStore(db signet.Store, open bool) *gatedStore {
	s := &gatedStore{Store: db, entered: make(chan struct{}, 100), gate: make(chan struct{})}
	if open {
		close(s.gate)
	}
	return s
}

func (s *gatedStore) Update(ctx context.Context, fn func(signet.Tx) error) error {
	s.updates.Add(1)
	s.entered <- struct{}{}
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.fail.Add(-1) >= 0 {
		return signet.Errorf(signet.Unavailable, "the store is down for the test")
	}
	return s.Store.Update(ctx, fn)
}

// within fails the test unless f returns within a few seconds.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

func TestQueue(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// More events than a batch holds, from two addresses; Close
		// stores every one of them.
		db := MustOpenDB(t)
		q := usagequeue.New(db, usagequeue.Options{})
		for i := range 2500 {
			q.Add(event("g-ok", []string{"192.0.2.1", "192.0.2.2"}[i%2], 10))
		}
		q.Close()
		if uses, failed, sent := usage(t, db, "g-ok"); uses != 2500 || failed != 0 || sent != 25000 {
			t.Errorf("stored %d uses, %d failed, %d bytes; want 2500, 0, 25000", uses, failed, sent)
		}
		if q.Stored() != 2500 || q.Dropped() != 0 || q.Failed() != 0 {
			t.Errorf("counts: stored %d, dropped %d, failed %d", q.Stored(), q.Dropped(), q.Failed())
		}
		q.Close() // again: nothing happens
		q.Add(event("g-ok", "192.0.2.1", 1))
		if q.Dropped() != 1 {
			t.Errorf("an event added after Close: dropped %d, want 1", q.Dropped())
		}
	})

	t.Run("FullDropsAndCounts", func(t *testing.T) {
		// The store blocks: the goroutine holds one event in its
		// Update, the queue holds four, and the next six are dropped
		// without Add waiting. Once the store moves, Close stores the
		// five.
		db := MustOpenDB(t)
		st := newGatedStore(db, false)
		var logs bytes.Buffer
		q := usagequeue.New(st, usagequeue.Options{Size: 4, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		q.Add(event("g-full", "192.0.2.1", 1))
		<-st.entered
		within(t, "Add on a full queue", func() {
			for range 10 {
				q.Add(event("g-full", "192.0.2.1", 1))
			}
		})
		if q.Dropped() != 6 {
			t.Errorf("dropped %d, want 6", q.Dropped())
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "dropped_total=1") {
			t.Errorf("%d warnings, want 1 (at the first drop):\n%s", n, logs.String())
		}
		// Close waits for the queued events to be stored.
		closed := make(chan struct{})
		go func() { q.Close(); close(closed) }()
		select {
		case <-closed:
			t.Error("Close returned before the queued events were stored")
		case <-time.After(50 * time.Millisecond):
		}
		close(st.gate)
		within(t, "Close", func() { <-closed })
		if uses, _, _ := usage(t, db, "g-full"); uses != 5 || q.Stored() != 5 {
			t.Errorf("stored %d uses (counted %d), want 5", uses, q.Stored())
		}
	})

	t.Run("StoreError", func(t *testing.T) {
		// A batch the store refuses three times is logged and
		// dropped; the next is stored. One refused twice is stored by
		// the third attempt.
		db := MustOpenDB(t)
		st := newGatedStore(db, true)
		st.fail.Store(3)
		var logs bytes.Buffer
		q := usagequeue.New(st, usagequeue.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		q.Add(event("g-err", "192.0.2.1", 1))
		for deadline := time.Now().Add(5 * time.Second); q.Failed() == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a batch the store refused was neither stored nor dropped")
			}
		}
		q.Add(event("g-err", "192.0.2.1", 1))
		q.Close()
		if uses, _, _ := usage(t, db, "g-err"); uses != 1 || q.Stored() != 1 || q.Failed() != 1 || st.updates.Load() != 4 {
			t.Errorf("stored %d uses, counted stored %d, failed %d, %d updates; want 1, 1, 1, 4", uses, q.Stored(), q.Failed(), st.updates.Load())
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "attempts=3") {
			t.Errorf("%d errors logged, want 1 after 3 attempts:\n%s", n, logs.String())
		}

		st.fail.Store(2)
		q = usagequeue.New(st, usagequeue.Options{})
		q.Add(event("g-err", "192.0.2.1", 1))
		q.Close()
		if uses, _, _ := usage(t, db, "g-err"); uses != 2 || q.Stored() != 1 || q.Failed() != 0 {
			t.Errorf("after two refusals: %d uses stored (want 2), counted stored %d, failed %d", uses, q.Stored(), q.Failed())
		}
	})
}
