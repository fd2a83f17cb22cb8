package main

import "runtime/debug"

// serveGCPercent is the garbage collector's target for `signet serve`
// when GOGC is not set: the heap may grow to five times what is live
// before a collection, instead of Go's default of twice. signet's live
// heap is small (caches of keys, teams and connectors; requests in
// flight), so collections under load came every few hundred requests and
// their marking cost about a sixth of a presign's CPU. Measured with
// scripts/bench-wrk, 128 connections, alternating runs on one machine:
// server CPU per presign 137 µs at GOGC=100 and 112 µs at 400
// (docs/performance.md). GOGC and GOMEMLIMIT still apply when set.
const serveGCPercent = 400

// tuneGC sets the collector's target for a server unless the operator
// chose one with GOGC; getenv is os.Getenv outside tests. It returns the
// percentage now in force.
func tuneGC(getenv func(string) string) int {
	if v := getenv("GOGC"); v != "" {
		// The runtime read GOGC at start; report it unchanged.
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}
