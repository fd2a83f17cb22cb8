package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	if got := tuneGC(func(string) string { return "" }); got != serveGCPercent {
		t.Errorf("GOGC unset: tuneGC = %d, want %d", got, serveGCPercent)
	}
	if p := debug.SetGCPercent(100); p != serveGCPercent {
		t.Errorf("GOGC unset: the runtime's percentage is %d, want %d", p, serveGCPercent)
	}
	// An operator's GOGC wins: the runtime applied it at start (simulated
	// here by 150), and tuneGC leaves it alone.
	debug.SetGCPercent(150)
	env := func(k string) string {
		if k == "GOGC" {
			return "150"
		}
		return ""
	}
	if got := tuneGC(env); got != 150 {
		t.Errorf("GOGC=150: tuneGC = %d, want 150", got)
	}
	if p := debug.SetGCPercent(100); p != 150 {
		t.Errorf("GOGC=150: the runtime's percentage is %d, want 150", p)
	}
}
