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
