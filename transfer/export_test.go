package transfer

import "time"

// SetBackoff shortens the retry backoff for a test and returns a function
// that restores it. Tests that call it must not run in parallel.
func SetBackoff(base, maxDelay time.Duration) (restore func()) {
	b, m := backoffBase, backoffMax
	backoffBase, backoffMax = base, maxDelay
	return func() { backoffBase, backoffMax = b, m }
}
