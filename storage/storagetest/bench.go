package storagetest

import "testing"

// Baselines are the costs per operation (ns) of the baselines a signing
// benchmark measured earlier in the same run: a minimal HMAC floor and
// the provider's SDK. Zero means not measured.
type Baselines struct {
	Floor, SDK float64
}

// NsPerOp is b's cost per operation so far, for a sub-benchmark that has
// finished its loop.
func NsPerOp(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// Report reports b's cost as ratios to the baselines measured (x-floor,
// x-SDK): on a noisy shared machine, ratios from one run are what to
// compare, not absolute times.
func (r Baselines) Report(b *testing.B) {
	d := NsPerOp(b)
	if r.Floor > 0 {
		b.ReportMetric(d/r.Floor, "x-floor")
	}
	if r.SDK > 0 {
		b.ReportMetric(d/r.SDK, "x-SDK")
	}
}
