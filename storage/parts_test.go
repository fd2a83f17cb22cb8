package storage_test

import (
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
)

const (
	mib = storage.MiB
	gib = storage.GiB
	tib = storage.TiB
)

func TestPlanParts(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			name           string
			size, partSize int64
			ps             int64
			count          int
		}{
			{"OneByte", 1, 0, 1, 1},
			{"DefaultOnePart", 16 * mib, 0, 16 * mib, 1},
			{"DefaultTwoParts", 16*mib + 1, 0, 16 * mib, 2},
			{"DefaultAtLimit", 10000 * 16 * mib, 0, 16 * mib, 10000},
			{"DefaultGrows", 10000*16*mib + 1, 0, 17 * mib, 9412},
			{"DefaultMax", 5 * tib, 0, 525 * mib, 9987},
			{"Requested", 100 * mib, 5 * mib, 5 * mib, 20},
			{"RequestedUneven", 11 * mib, 5 * mib, 5 * mib, 3},
			{"SmallRequestOnePart", 1000, 1 * mib, 1000, 1},
			{"MaxPart", 10 * gib, 5 * gib, 5 * gib, 2},
			{"MaxCount", 10000 * 5 * mib, 5 * mib, 5 * mib, 10000},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ps, n, err := storage.PlanParts(tc.size, tc.partSize)
				if err != nil || ps != tc.ps || n != tc.count {
					t.Fatalf("PlanParts(%d, %d) = %d, %d, %v; want %d, %d", tc.size, tc.partSize, ps, n, err, tc.ps, tc.count)
				}
				// The plan covers the object exactly.
				var total int64
				for i := 1; i <= n; i++ {
					p := storage.PartSize(tc.size, ps, i)
					if p <= 0 || p > ps || i < n && p != ps {
						t.Fatalf("PartSize(%d, %d, %d) = %d", tc.size, ps, i, p)
					}
					total += p
				}
				if total != tc.size || storage.PartSize(tc.size, ps, n+1) != 0 {
					t.Errorf("parts sum to %d, want %d", total, tc.size)
				}
			})
		}
	})
	for _, tc := range []struct {
		name           string
		size, partSize int64
		code           signet.Code
	}{
		{"ErrZeroSize", 0, 0, signet.Invalid},
		{"ErrNegativeSize", -1, 0, signet.Invalid},
		{"ErrTooLarge", 5*tib + 1, 0, signet.TooLarge},
		{"ErrNegativePart", 10, -1, signet.Invalid},
		{"ErrPartTooSmall", 20 * mib, 5*mib - 1, signet.Invalid},
		{"ErrPartTooLarge", 20 * gib, 5*gib + 1, signet.Invalid},
		{"ErrPartTooLargeOnePart", 10, 5*gib + 1, signet.Invalid},
		{"ErrTooManyParts", 10000*5*mib + 1, 5 * mib, signet.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := storage.PlanParts(tc.size, tc.partSize)
			if got := signet.ErrorCode(err); got != tc.code {
				t.Errorf("PlanParts(%d, %d) code %q (%v), want %q", tc.size, tc.partSize, got, err, tc.code)
			}
		})
	}
}

func TestPartSize(t *testing.T) {
	for _, tc := range []struct {
		size, ps int64
		n        int
		want     int64
	}{
		{11, 5, 1, 5},
		{11, 5, 2, 5},
		{11, 5, 3, 1},
		{11, 5, 4, 0},
		{11, 5, 0, 0},
		{10, 5, 2, 5},
		{10, 0, 1, 0},
		{0, 5, 1, 0},
	} {
		if got := storage.PartSize(tc.size, tc.ps, tc.n); got != tc.want {
			t.Errorf("PartSize(%d, %d, %d) = %d, want %d", tc.size, tc.ps, tc.n, got, tc.want)
		}
	}
}
