package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: writes from many goroutines all land whole, and
// reads while they write see no torn state (the race detector would
// report an unsynchronised buffer).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
	if got := string(b.Bytes()); got != b.String() {
		t.Errorf("Bytes and String differ")
	}
}

// TestMaxAndTail: with Max set the buffer keeps the newest output and
// drops the oldest, and Tail returns the last bytes.
func TestMaxAndTail(t *testing.T) {
	b := Buffer{Max: 100}
	for i := range 50 {
		fmt.Fprintf(&b, "line %02d\n", i)
	}
	got := b.String()
	if len(got) > 100+8 || !strings.HasSuffix(got, "line 49\n") || strings.Contains(got, "line 00") {
		t.Errorf("bounded buffer holds %d bytes: %q", len(got), got)
	}
	if tail := b.Tail(8); tail != "line 49\n" {
		t.Errorf("Tail(8) = %q", tail)
	}
	if all := b.Tail(1 << 20); all != got {
		t.Errorf("Tail past the start = %q, want everything", all)
	}
}
