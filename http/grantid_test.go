package http

import (
	"sort"
	"testing"
	"time"
)

// Grant ids sort by issue time (so the audit index on them grows at its
// end), are valid URL tokens, and stay unique within one millisecond.
func TestGrantIDOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		id := grantID(t0.Add(time.Duration(i/4) * time.Millisecond * 37))
		if len(id) != 25 {
			t.Fatalf("grant id %q: %d characters, want 25", id, len(id))
		}
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				t.Fatalf("grant id %q holds %q", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("grant id %q issued twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.SliceIsSorted(ids, func(i, j int) bool { return ids[i][:9] < ids[j][:9] }) {
		t.Fatal("grant id prefixes do not sort in issue order")
	}
	if a, b := grantID(t0), grantID(t0.Add(time.Millisecond)); a[:9] >= b[:9] {
		t.Fatalf("%q issued before %q sorts after it", a, b)
	}
}
