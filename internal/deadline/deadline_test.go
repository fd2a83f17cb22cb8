package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExpired(t *testing.T) {
	if err := Expired(context.Background()); err != nil {
		t.Errorf("no deadline: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	if err := Expired(ctx); err != nil {
		t.Errorf("an hour left: %v", err)
	}
	cancel()
	if err := Expired(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A deadline in the past counts at once, whatever the cancellation
	// machinery has done yet.
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel2()
	if err := Expired(past); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past deadline: %v", err)
	}
}

func TestWithin(t *testing.T) {
	bg := context.Background()
	// No deadline yet: one d from now.
	ctx, cancel := Within(bg, time.Hour)
	dl, ok := ctx.Deadline()
	if !ok || dl.Before(time.Now().Add(59*time.Minute)) || dl.After(time.Now().Add(time.Hour)) {
		t.Errorf("no deadline before: got %v, %v; want about an hour from now", dl, ok)
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("cancel did not cancel the new context")
	}

	// A sooner deadline stays, and ctx is returned as it is.
	soon, cancelSoon := context.WithTimeout(bg, time.Minute)
	defer cancelSoon()
	ctx, cancel = Within(soon, time.Hour)
	if ctx != soon {
		t.Error("a deadline sooner than d: got a new context, want ctx itself")
	}
	cancel()
	if soon.Err() != nil {
		t.Error("the no-op cancel cancelled the caller's context")
	}

	// A later deadline is tightened.
	late, cancelLate := context.WithTimeout(bg, 2*time.Hour)
	defer cancelLate()
	ctx, cancel = Within(late, time.Minute)
	defer cancel()
	if dl, _ := ctx.Deadline(); !dl.Before(time.Now().Add(2 * time.Minute)) {
		t.Errorf("a later deadline: got %v, want within a minute", dl)
	}

	// No bound asked for.
	if ctx, _ := Within(bg, 0); ctx != bg {
		t.Error("d = 0: got a new context, want ctx itself")
	}
}
