package storage

import (
	"github.com/signetdev/signet"
)

// Multipart limits shared by every store (S3's, which GCS's XML API and the
// local store follow; Azure's block limits are wider).
const (
	MiB = 1 << 20 // bytes
	GiB = 1 << 30 // bytes
	TiB = 1 << 40 // bytes

	MaxObjectSize   = 5 * TiB  // largest object
	MinPartSize     = 5 * MiB  // smallest part but the last
	MaxPartSize     = 5 * GiB  // largest part
	MaxParts        = 10000    // most parts in one upload
	DefaultPartSize = 16 * MiB // part size when the client does not choose
)

// PlanParts returns the part size and the number of parts for an object of
// size bytes uploaded in parts of partSize bytes; partSize 0 chooses
// DefaultPartSize, or the smallest whole MiB that keeps the count within
// MaxParts. Every part but the last has exactly ps bytes; ps never exceeds
// size, so an object that fits in one part is planned as a single part of
// size bytes (then partSize may be below MinPartSize).
//
// Errors are *signet.Error values: TooLarge when size exceeds
// MaxObjectSize; Invalid when size is not positive, partSize is negative,
// below MinPartSize for an object that needs several parts, above
// MaxPartSize, or so small that more than MaxParts parts are needed.
func PlanParts(size, partSize int64) (ps int64, count int, err error) {
	const op = "storage.PlanParts"
	switch {
	case size <= 0:
		return 0, 0, &signet.Error{Op: op, Code: signet.Invalid, Msg: "size must be at least 1 byte"}
	case size > MaxObjectSize:
		return 0, 0, &signet.Error{Op: op, Code: signet.TooLarge, Msg: "size exceeds the maximum object size of 5 TiB"}
	case partSize < 0:
		return 0, 0, &signet.Error{Op: op, Code: signet.Invalid, Msg: "part size must not be negative"}
	case partSize > MaxPartSize:
		return 0, 0, &signet.Error{Op: op, Code: signet.Invalid, Msg: "part size must be at most 5 GiB"}
	}
	ps = partSize
	if ps == 0 {
		ps = DefaultPartSize
		if ceilDiv(size, ps) > MaxParts {
			ps = ceilDiv(size, MaxParts*MiB) * MiB
		}
	}
	if size <= ps {
		return size, 1, nil
	}
	if ps < MinPartSize {
		return 0, 0, &signet.Error{Op: op, Code: signet.Invalid, Msg: "part size must be at least 5 MiB"}
	}
	n := ceilDiv(size, ps)
	if n > MaxParts {
		return 0, 0, errorf(op, signet.Invalid, "part size too small: %d parts needed, at most %d are allowed; use at least %d MiB", n, MaxParts, ceilDiv(size, MaxParts*MiB))
	}
	return ps, int(n), nil
}

// PartSize returns the size of part n (1-based) of an object of size bytes
// split into parts of partSize bytes: partSize for every part but the last,
// the remainder for the last, and 0 when n is out of range or the
// arguments are not positive.
func PartSize(size, partSize int64, n int) int64 {
	if size <= 0 || partSize <= 0 || n < 1 {
		return 0
	}
	count := ceilDiv(size, partSize)
	switch {
	case int64(n) > count:
		return 0
	case int64(n) == count:
		return size - (count-1)*partSize
	}
	return partSize
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
