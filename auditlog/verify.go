package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/signetdev/signet"
)

// Kind classifies what is wrong with an audit log.
type Kind string

// Kinds of inconsistency a Verifier reports.
const (
	// HashMismatch: an entry's fields do not hash to its Hash; the entry
	// was edited (or its hash was).
	HashMismatch Kind = "hash mismatch"
	// BrokenLink: an entry's PrevHash is not the Hash of the entry before;
	// the entry before was rewritten (with a recomputed hash), or the link
	// was.
	BrokenLink Kind = "broken link"
	// Gap: an entry is missing; the next one has a higher Seq.
	Gap Kind = "gap"
	// Duplicate: a Seq appears twice.
	Duplicate Kind = "duplicate"
	// OutOfOrder: entries appear in another order than their Seq.
	OutOfOrder Kind = "out of order"
	// Truncated: the log ends before an entry that a signed checkpoint, or
	// the store's own record of its head, says was appended.
	Truncated Kind = "truncated"
	// CheckpointMismatch: the entry at a signed checkpoint's Seq has
	// another hash than the checkpoint: history up to it was rewritten,
	// or the log is an older or another one.
	CheckpointMismatch Kind = "checkpoint mismatch"
	// HeadMismatch: the store's record of the last entry appended does not
	// match the log's last entry.
	HeadMismatch Kind = "head mismatch"
	// Malformed: an entry cannot be read, or holds values no store writes.
	Malformed Kind = "malformed"
	// Unanchored: the log starts after entry 1, as a log pruned for
	// retention does, but no signed checkpoint of the entry before its
	// first was given, or no audit.prune entry records the pruning.
	Unanchored Kind = "unanchored start"
)

// VerifyError describes the first inconsistency found in an audit log.
type VerifyError struct {
	// Seq is the position of the first bad entry: the Seq of the entry
	// found wrong, or for a missing entry, the Seq that is missing. It is
	// 0 when a line could not be read.
	Seq int64
	// Line is the line of a JSON-lines file the entry is on; 0 for a
	// database.
	Line   int
	Kind   Kind
	Detail string
}

func (e *VerifyError) Error() string {
	s := ""
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Seq > 0 {
		s += fmt.Sprintf("entry %d: ", e.Seq)
	}
	return s + string(e.Kind) + ": " + e.Detail
}

// Verifier checks a stream of audit events, in the order the log holds
// them, against the chain rules: Seq numbers follow one another from the
// anchor on, each PrevHash is the Hash of the entry before, each Hash is
// the digest of its entry, and entries at the Seq of a checkpoint have the
// checkpoint's hash. It stops at the first inconsistency and reports it
// again on every later call. The zero Verifier is not usable; call
// NewVerifier.
type Verifier struct {
	next        int64            // the Seq the next entry must have
	prev        signet.AuditHash // the hash the next entry must link to
	count       int64
	checkpoints map[int64][]*Checkpoint
	checked     int // checkpoints matched
	buf         []byte
	line        int
	err         *VerifyError
	// pending is a gap seen at the last entry: whether it is a gap or a
	// swap shows at the next one.
	pending *VerifyError
	gapSeq  int64 // the Seq found where pending's was expected
	// fromStart: the log is verified from its start (the zero anchor),
	// which may have been pruned (see anchorPruned).
	fromStart bool
	// prunedThrough is the last entry pruned before the log's first, when
	// a checkpoint anchored it there; pruneRecorded, that an audit.prune
	// entry records pruning up to it.
	prunedThrough int64
	pruneRecorded bool
}

// NewVerifier returns a Verifier for a log that continues after anchor:
// its first entry must have Seq anchor.Seq+1 and PrevHash anchor.Hash.
// The zero AuditHead is the start of a log, so a whole log is verified
// from signet.AuditHead{}. Each checkpoint, whose signature the caller
// has checked, must agree with the entry at its Seq; Finish reports those
// beyond the end of the log as truncation.
func NewVerifier(anchor signet.AuditHead, checkpoints ...*Checkpoint) *Verifier {
	v := &Verifier{
		next:        anchor.Seq + 1,
		prev:        anchor.Hash,
		checkpoints: make(map[int64][]*Checkpoint),
		buf:         make([]byte, 0, 512),
		fromStart:   anchor == signet.AuditHead{},
	}
	for _, cp := range checkpoints {
		v.checkpoints[cp.Seq] = append(v.checkpoints[cp.Seq], cp)
	}
	return v
}

// Count returns how many entries have been verified.
func (v *Verifier) Count() int64 { return v.count }

// Head returns the Seq and Hash of the last entry verified, or the anchor
// if none was.
func (v *Verifier) Head() signet.AuditHead { return signet.AuditHead{Seq: v.next - 1, Hash: v.prev} }

func (v *Verifier) fail(seq int64, kind Kind, format string, args ...any) error {
	v.err = &VerifyError{Seq: seq, Line: v.line, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	return v.err
}

// Add verifies the next entry of the log. It returns a *VerifyError for
// the first inconsistency, and that error again on every later call.
func (v *Verifier) Add(e *signet.AuditEvent) error { return v.add(e, nil) }

// add is Add, with e's hash already computed when h is not nil.
func (v *Verifier) add(e *signet.AuditEvent, h *signet.AuditHash) error {
	if v.err != nil {
		return v.err
	}
	if v.pending != nil {
		// The last entry skipped v.next. If this one is v.next, the two
		// were swapped; otherwise v.next is missing.
		p := v.pending
		if e.Seq == v.next {
			v.err = &VerifyError{Seq: v.gapSeq, Line: p.Line, Kind: OutOfOrder, Detail: fmt.Sprintf(
				"entry %d comes before entry %d", v.gapSeq, e.Seq)}
		} else {
			v.err = p
		}
		return v.err
	}
	if e.Seq > v.next && v.fromStart && v.count == 0 {
		if err := v.anchorPruned(e); err != nil {
			return err
		}
	}
	switch {
	case e.Seq == v.next:
	case e.Seq > v.next && v.fromStart && v.count == 0:
		v.pending = &VerifyError{Seq: v.next, Line: v.line, Kind: Unanchored, Detail: fmt.Sprintf(
			"the log starts at entry %d: %s missing. A log pruned for retention verifies only with the signed checkpoint "+
				"of entry %d, whose hash its first entry links to (--checkpoint FILE-OR-DIR --pubkey FILE)",
			e.Seq, entries(1, e.Seq-1), e.Seq-1)}
		v.gapSeq = e.Seq
		return nil
	case e.Seq > v.next:
		v.pending = &VerifyError{Seq: v.next, Line: v.line, Kind: Gap, Detail: fmt.Sprintf(
			"entry %d is missing: %s is followed by entry %d", v.next, v.describePrev(), e.Seq)}
		v.gapSeq = e.Seq
		return nil
	case e.Seq == v.next-1:
		if e.Hash == v.prev {
			return v.fail(e.Seq, Duplicate, "entry %d appears twice", e.Seq)
		}
		return v.fail(e.Seq, Duplicate, "a second, different entry %d (a fork)", e.Seq)
	default:
		return v.fail(e.Seq, OutOfOrder, "entry %d comes after entry %d", e.Seq, v.next-1)
	}
	if err := v.wellFormed(e); err != nil {
		return err
	}
	if h == nil {
		v.buf = Encode(v.buf[:0], e)
		sum := signet.AuditHash(sha256.Sum256(v.buf))
		h = &sum
	}
	if *h != e.Hash {
		return v.fail(e.Seq, HashMismatch, "its fields hash to %s, but its recorded hash is %s: the entry was changed", *h, e.Hash)
	}
	if e.PrevHash != v.prev {
		if e.Seq == 1 {
			return v.fail(e.Seq, BrokenLink, "the first entry's prev_hash is %s, not zero", e.PrevHash)
		}
		return v.fail(e.Seq, BrokenLink, "its prev_hash %s is not the hash of entry %d (%s): entry %d was rewritten, or this link was",
			e.PrevHash, e.Seq-1, v.prev, e.Seq-1)
	}
	for _, cp := range v.checkpoints[e.Seq] {
		if cp.Hash != e.Hash {
			return v.fail(e.Seq, CheckpointMismatch, "its hash is %s, but the checkpoint signed at %s says %s: "+
				"the log up to here was rewritten, or is not the log the checkpoint was taken of",
				e.Hash, cp.Time.Format(time.RFC3339), cp.Hash)
		}
		v.checked++
	}
	if v.prunedThrough > 0 && e.Action == signet.ActionAuditPrune {
		if _, through, ok := parsePruneTarget(e.Target); ok && through == v.prunedThrough {
			v.pruneRecorded = true
		}
	}
	v.next++
	v.prev = e.Hash
	v.count++
	return nil
}

// anchorPruned is called for the first entry e of a log verified from its
// start, when e is not entry 1. If a checkpoint of entry e.Seq-1 has the
// hash e links to, the log was pruned there for retention: verification
// goes on from that checkpoint, and Finish requires an audit.prune entry
// recording it. A checkpoint of that entry with another hash is a
// mismatch. Otherwise, nothing changes and e is reported as missing
// entries.
func (v *Verifier) anchorPruned(e *signet.AuditEvent) error {
	cps := v.checkpoints[e.Seq-1]
	for _, cp := range cps {
		if cp.Hash == e.PrevHash {
			v.next, v.prev = e.Seq, e.PrevHash
			v.prunedThrough = e.Seq - 1
			v.checked++
			return nil
		}
	}
	if len(cps) > 0 {
		return v.fail(e.Seq, CheckpointMismatch, "the log starts at entry %d, whose prev_hash %s is not the hash of "+
			"entry %d that the checkpoint signed at %s records (%s): the log was rewritten, or is another log",
			e.Seq, e.PrevHash, e.Seq-1, cps[0].Time.Format(time.RFC3339), cps[0].Hash)
	}
	return nil
}

// PrunedThrough returns the last entry pruned before the log's first, when
// the log was verified from its start and a checkpoint anchored it after
// entry 1; 0 otherwise.
func (v *Verifier) PrunedThrough() int64 { return v.prunedThrough }

func (v *Verifier) describePrev() string {
	if v.next == 1 {
		return "the start of the log"
	}
	return fmt.Sprintf("entry %d", v.next-1)
}

// wellFormed checks what the hash cannot: values no store writes.
func (v *Verifier) wellFormed(e *signet.AuditEvent) error {
	switch {
	case e.ID != e.Seq:
		return v.fail(e.Seq, Malformed, "its id %d differs from its seq", e.ID)
	case e.Time.IsZero():
		return v.fail(e.Seq, Malformed, "it has no time")
	case e.Time.Nanosecond()%1000 != 0 || e.ExpiresAt.Nanosecond()%1000 != 0:
		return v.fail(e.Seq, Malformed, "a time has digits below the microsecond, which no store keeps")
	}
	return nil
}

// Finish ends the stream. It reports a pending gap, checkpoints beyond
// the last entry (the tail was cut, or the log is an old backup), and,
// when head is not nil, a store head that differs from the last entry.
func (v *Verifier) Finish(head *signet.AuditHead) error {
	if v.err != nil {
		return v.err
	}
	if v.pending != nil {
		v.err = v.pending
		return v.err
	}
	last := v.next - 1
	v.line = 0
	if v.prunedThrough > 0 && !v.pruneRecorded {
		return v.fail(v.prunedThrough+1, Unanchored, "the log starts at entry %d, after the signed checkpoint of entry %d, "+
			"but no %s entry records pruning up to entry %d: the entries before it were deleted outside signet's retention",
			v.prunedThrough+1, v.prunedThrough, signet.ActionAuditPrune, v.prunedThrough)
	}
	var beyond *Checkpoint
	for seq, cps := range v.checkpoints {
		if seq > last && (beyond == nil || seq > beyond.Seq) {
			beyond = cps[0]
		}
	}
	if beyond != nil {
		return v.fail(last+1, Truncated, "the log ends at entry %d, but a checkpoint signed at %s covers entries up to %d: "+
			"%s missing (the tail was cut, or this is an older copy of the log)",
			last, beyond.Time.Format(time.RFC3339), beyond.Seq, entries(last+1, beyond.Seq))
	}
	if head != nil {
		switch {
		case head.Seq > last:
			return v.fail(last+1, Truncated, "the store recorded appending up to entry %d, but the log ends at entry %d: "+
				"%s removed", head.Seq, last, entries(last+1, head.Seq))
		case head.Seq < last:
			return v.fail(head.Seq+1, HeadMismatch, "the store recorded appending up to entry %d only, but the log goes on to entry %d: "+
				"entries after %d were not appended by signet", head.Seq, last, head.Seq)
		case head.Hash != v.prev:
			return v.fail(last, HeadMismatch, "the store recorded hash %s for the last entry, but it has %s", head.Hash, v.prev)
		}
	}
	return nil
}

// entries names the entries from to to, with a verb: "entry 5 is",
// "entries 5 to 9 are".
func entries(from, to int64) string {
	if from == to {
		return fmt.Sprintf("entry %d is", from)
	}
	return fmt.Sprintf("entries %d to %d are", from, to)
}

// Result summarises a successful verification.
type Result struct {
	Entries     int64            // entries verified
	Head        signet.AuditHead // the last entry verified (the anchor if none)
	Checkpoints int              // checkpoints that agreed with the log
	// PrunedThrough is the last entry pruned for retention before the
	// log's first, which a checkpoint anchored; 0 if the log was not
	// pruned (or was verified after an anchor).
	PrunedThrough int64
	Elapsed       time.Duration
}

func (v *Verifier) result(start time.Time) Result {
	return Result{Entries: v.count, Head: v.Head(), Checkpoints: v.checked, PrunedThrough: v.prunedThrough,
		Elapsed: time.Since(start)}
}

// pageSize is how many events VerifyStore reads per query.
const pageSize = 1000

// VerifyStore verifies the log in s after anchor (the zero AuditHead for
// the whole log) in one read-only transaction, and the store's record of
// its head against the last entry. Checkpoints must have been checked by
// the caller. It returns a *VerifyError for an inconsistency, the store's
// error if it cannot be read.
func VerifyStore(ctx context.Context, s signet.Store, anchor signet.AuditHead, checkpoints ...*Checkpoint) (Result, error) {
	start := time.Now()
	v := NewVerifier(anchor, checkpoints...)
	err := s.View(ctx, func(tx signet.Tx) error {
		head, err := tx.AuditHead()
		if err != nil {
			return err
		}
		if err := verifyPages(ctx, tx, v, anchor.Seq); err != nil {
			return err
		}
		return v.Finish(&head)
	})
	return v.result(start), err
}

// verifyPages feeds v every event of tx after afterID. It reads the next
// page while the last one is hashed and checked in another goroutine.
func verifyPages(ctx context.Context, tx signet.Tx, v *Verifier, afterID int64) error {
	pages := make(chan []*signet.AuditEvent, 2)
	failed := make(chan struct{})
	checked := make(chan error, 1)
	go func() {
		var err error
		for page := range pages {
			if err != nil {
				continue // drain
			}
			for _, e := range page {
				if err = v.Add(e); err != nil {
					close(failed)
					break
				}
			}
		}
		checked <- err
	}()
	f := signet.AuditFilter{AfterID: afterID, Limit: pageSize}
	var readErr error
read:
	for {
		evs, err := tx.Audit(f)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			readErr = err
			break
		}
		select {
		case pages <- evs:
		case <-failed:
			break read
		}
		if len(evs) < pageSize {
			break
		}
		f.AfterID = evs[len(evs)-1].ID
	}
	close(pages)
	if err := <-checked; err != nil {
		return err
	}
	return readErr
}

// maxLine bounds one line of a JSON-lines export.
const maxLine = 16 << 20

// lineBatch is a run of consecutive lines of a JSON-lines file, decoded
// and hashed by a worker.
type lineBatch struct {
	first  int // line number of lines[0]
	lines  [][]byte
	events []*signet.AuditEvent // nil for a blank line
	hashes []signet.AuditHash
	err    *VerifyError // the first line that is not an event
	done   chan struct{}
}

func (b *lineBatch) decode() {
	defer close(b.done)
	b.events = make([]*signet.AuditEvent, len(b.lines))
	b.hashes = make([]signet.AuditHash, len(b.lines))
	buf := make([]byte, 0, 512)
	for i, line := range b.lines {
		if len(line) == 0 {
			continue
		}
		e := new(signet.AuditEvent)
		if err := decodeEvent(line, e); err != nil {
			b.err = &VerifyError{Line: b.first + i, Kind: Malformed, Detail: fmt.Sprintf("not an audit event: %v", err)}
			b.events = b.events[:i]
			return
		}
		b.events[i] = e
		buf = Encode(buf[:0], e)
		b.hashes[i] = sha256.Sum256(buf)
	}
}

// plainEvent is signet.AuditEvent without its JSON methods.
type plainEvent signet.AuditEvent

// decodeEvent decodes one line of an export into e. It is json.Unmarshal
// into e, in one pass instead of two for the common event that has no
// "raw" fields; AuditEvent.UnmarshalJSON handles those.
func decodeEvent(line []byte, e *signet.AuditEvent) error {
	w := struct {
		*plainEvent
		Raw json.RawMessage `json:"raw"`
	}{plainEvent: (*plainEvent)(e)}
	if err := json.Unmarshal(line, &w); err != nil {
		return err
	}
	if len(w.Raw) > 0 {
		*e = signet.AuditEvent{}
		return json.Unmarshal(line, e)
	}
	return nil
}

// VerifyJSONLines verifies a log exported as JSON lines, one event per
// line, as `signet audit export` writes it, after anchor (the zero
// AuditHead for a whole log). Blank lines are skipped. It returns a
// *VerifyError, with the line number, for an inconsistency or a line that
// is not an event, and the reader's error if it fails. Lines are decoded
// and hashed on every CPU; the chain is checked in order.
func VerifyJSONLines(r io.Reader, anchor signet.AuditHead, checkpoints ...*Checkpoint) (Result, error) {
	const batchLines = 512
	start := time.Now()
	v := NewVerifier(anchor, checkpoints...)
	work := make(chan *lineBatch)
	ordered := make(chan *lineBatch, 4*runtime.GOMAXPROCS(0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for b := range work {
				b.decode()
			}
		})
	}
	var readErr error
	go func() {
		defer close(ordered)
		defer close(work)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		b := &lineBatch{first: 1, done: make(chan struct{})}
		send := func() bool {
			select {
			case ordered <- b:
			case <-stop:
				return false
			}
			select {
			case work <- b:
			case <-stop:
				close(b.done)
				return false
			}
			return true
		}
		for sc.Scan() {
			line++
			b.lines = append(b.lines, bytes.Clone(bytes.TrimSpace(sc.Bytes())))
			if len(b.lines) == batchLines {
				if !send() {
					return
				}
				b = &lineBatch{first: line + 1, done: make(chan struct{})}
			}
		}
		if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
			readErr = &VerifyError{Line: line + 1, Kind: Malformed, Detail: fmt.Sprintf("line longer than %d bytes", maxLine)}
		} else if err != nil {
			readErr = err
		}
		if len(b.lines) > 0 {
			send()
		}
	}()
	var err error
	for b := range ordered {
		<-b.done
		if err != nil {
			continue
		}
		for i, e := range b.events {
			if e == nil {
				continue
			}
			v.line = b.first + i
			if err = v.add(e, &b.hashes[i]); err != nil {
				break
			}
		}
		if err == nil && b.err != nil {
			// The lines before were fine: report the bad one.
			v.err, err = b.err, b.err
		}
		if err != nil {
			close(stop)
		}
	}
	wg.Wait()
	if err != nil {
		return v.result(start), err
	}
	if readErr != nil {
		return v.result(start), readErr
	}
	return v.result(start), v.Finish(nil)
}
