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
