package fileblob

import (
	"context"
	"strings"
	"testing"

	"github.com/signetdev/signet/storage/driver"
)

// TestDiagnoseDisk checks the free-space thresholds with the measurement
// replaced: the real one is the machine's.
func TestDiagnoseDisk(t *testing.T) {
	s, err := Open(t.TempDir(), Options{BaseURL: "http://127.0.0.1:1", Keys: []Key{{ID: "k1", Secret: make([]byte, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := freeSpace(s.root.Name()); !ok {
		t.Log("free space is not measured on this system; the thresholds are still checked")
	}
	defer func(f func(string) (uint64, bool)) { diskFree = f }(diskFree)
	for _, tc := range []struct {
		free   uint64
		ok     bool
		status string
		detail string
	}{
		{free: 5 << 30, ok: true, status: driver.CheckOK, detail: "5.0 GiB free"},
		{free: 300 << 20, ok: true, status: driver.CheckWarn, detail: "300.0 MiB free"},
		{ok: false, status: driver.CheckSkip, detail: "not measured"},
	} {
		diskFree = func(string) (uint64, bool) { return tc.free, tc.ok }
		checks, _ := s.Diagnose(context.Background(), nil)
		c := checks[1]
		if c.Name != "disk" || c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || (c.Status == driver.CheckWarn && c.Fix == "") {
			t.Errorf("%d bytes free: %+v, want %s with %q", tc.free, c, tc.status, tc.detail)
		}
	}
}
