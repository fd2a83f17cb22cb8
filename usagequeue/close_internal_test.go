package usagequeue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// downStore is a store that is down: each Update waits for gate, then
// fails.
type downStore struct {
	signet.Store
	gate    chan struct{}
	updates atomic.Int64
}

func (s *downStore) Update(ctx context.Context, fn func(signet.Tx) error) error {
	s.updates.Add(1)
	<-s.gate
	return signet.Errorf(signet.Unavailable, "down")
}

// TestCloseStoreDown checks that Close does not try every queued batch
// against a store that is down: once a batch fails while closing, the
// rest is dropped and counted.
func TestCloseStoreDown(t *testing.T) {
	st := &downStore{gate: make(chan struct{})}
	q := New(st, Options{Batch: 1})
	ev := func() *signet.UsageEvent {
		return &signet.UsageEvent{Time: time.Now(), Source: signet.UsageSourceLocal, GrantID: "g"}
	}
	for range 5 {
		q.Add(ev())
	}
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	for !q.isClosed() {
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if q.Failed() != 5 || st.updates.Load() != attempts {
		t.Errorf("failed %d, %d updates; want 5 failed after %d updates (one batch)", q.Failed(), st.updates.Load(), attempts)
	}
}
