package auditsink

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/postgres"
)

// TestPostgresReplicas: two replicas (two pools) append to one
// PostgreSQL log; a webhook sink on one of them delivers every entry,
// also those of the other replica, which never wakes it (it finds them
// by polling), in seq order.
func TestPostgresReplicas(t *testing.T) {
	u := testpeer.PostgresURL(t)
	ctx := context.Background()
	a, err := postgres.OpenOrInit(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	rc := newReceiver(t)
	r := start(t, b, t.TempDir(), nil, Config{Name: "siem", Type: TypeWebhook, URL: rc.URL, Batch: 50,
		PollInterval: 50 * time.Millisecond, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { appendN(t, a, 70) })       // the other replica
		wg.Go(func() { appendN(t, r.store, 70) }) // this one, which notifies
	}
	wg.Wait()
	want := allEvents(t, a)
	if len(want) != 420 {
		t.Fatalf("log has %d entries, want 420", len(want))
	}
	waitFor(t, "every entry at the receiver", func() bool { got, _ := rc.deduped(); return len(got) >= len(want) })
	got, repeats := rc.deduped()
	if err := sameLog(got, want); err != nil {
		t.Error(err)
	}
	if repeats != 0 {
		t.Errorf("%d repeats without a crash", repeats)
	}
}
