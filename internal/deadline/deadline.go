// Package deadline tells whether a context's time is up.
package deadline

import (
	"context"
	"time"
)

// Expired returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed even if the cancellation has not reached ctx yet: a
// parent's deadline reaches its children a moment after the parent's own
// Done closes, so code woken by the parent could otherwise still see a
// child as live.
func Expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// Within returns ctx bounded to d from now, as context.WithTimeout does,
// except that it returns ctx itself, with a cancel that does nothing, when
// d is not positive or ctx's own deadline already comes no later: a timer
// that could only fire after ctx's is one a request pays for in vain (an
// audited presign bounded its commit twice, by the HTTP layer's deadline
// and then by the store's equal WriteTimeout).
func Within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && !dl.After(time.Now().Add(d)) {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
