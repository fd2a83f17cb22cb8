// Package retry holds the delay and the wait that signet's retry loops
// share: the transfer client's requests and the audit sinks' deliveries.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff returns the delay before retry number attempt (0 for the first
// retry): doubling from lo, capped at hi, with "equal jitter" (half of it
// fixed, half random), so that many clients failing together do not
// retry together.
func Backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx is done, and then returns ctx's cause.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
