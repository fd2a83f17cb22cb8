package sqlstore

import "github.com/signetdev/signet"

// AuditPage reads the page of f, at most limit events, with query, which
// returns at most limit events matching f with IDs up to upTo when it is
// not 0, in ID order.
//
// A time range that starts late in a long log matches nothing for most of
// it, and times need not grow with ids, so an index on the time cannot
// give the pages in id order. So: the page is first looked for in the
// next SinceWindow(limit) ids after the cursor, which is all it takes
// when matches are frequent; failing that, sinceStart, through the time
// index, gives the lowest id after that window with a time at or after
// f.Since (0 if none), when not too many match (ok), and the log is read
// from there. When many match, they are found soon reading on.
func AuditPage(f signet.AuditFilter, limit int,
	query func(f signet.AuditFilter, upTo int64, limit int) ([]*signet.AuditEvent, error),
	sinceStart func(afterID int64) (lo int64, ok bool, err error)) ([]*signet.AuditEvent, error) {
	if f.Since.IsZero() {
		return query(f, 0, limit)
	}
	window := f.AfterID + SinceWindow(limit)
	evs, err := query(f, window, limit)
	if err != nil || len(evs) == limit {
		return evs, err
	}
	rest := f
	rest.AfterID = window
	lo, ok, err := sinceStart(window)
	switch {
	case err != nil:
		return nil, err
	case ok && lo == 0:
		return evs, nil // nothing later is that recent
	case ok:
		rest.AfterID = max(window, lo-1)
	}
	more, err := query(rest, 0, limit-len(evs))
	return append(evs, more...), err
}

// SinceWindow is how many ids after the cursor AuditPage first looks for
// a page of limit events of a time range in.
func SinceWindow(limit int) int64 { return 10 * int64(limit) }
