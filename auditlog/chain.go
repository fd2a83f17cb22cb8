// Package auditlog makes signet's audit log tamper-evident: it defines the
// canonical encoding and hash chain of audit events, verifies a log read
// from a store or from a JSON-lines export, and signs and checks
// checkpoints with an Ed25519 key kept outside the database.
//
// The stores (sqlite, postgres) call Chain inside the transaction that
// appends the events; `signet audit verify` and the Checkpointer use a
// Verifier. The format is described in docs/audit.md; changing anything
// that Encode writes needs a new version tag.
package auditlog

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/signetdev/signet"
)

// EntryTag opens the canonical encoding of every audit event. It names the
// format version: events hashed under another encoding carry another tag.
const EntryTag = "signet.audit.entry.v1"

// timeLayout writes instants in UTC, RFC 3339, with exactly six fractional
// digits: the stores keep microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// appendField appends v with its length, as a big-endian uint64, before it.
func appendField[T string | []byte](dst []byte, v T) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(v)))
	return append(dst, v...)
}

// appendTime appends t as a field: UTC, microsecond precision, empty for
// the zero time.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendField(dst, "")
	}
	var buf [len(timeLayout) + 8]byte
	return appendField(dst, t.UTC().AppendFormat(buf[:0], timeLayout))
}

// appendSeq appends n as a field of eight big-endian bytes.
func appendSeq(dst []byte, n int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// Encode appends the canonical encoding of e to dst and returns the
// result. Every field is written with its length first (a big-endian
// uint64), in this fixed order:
//
//	EntryTag, Seq (8 bytes, big-endian), Time, RequestID, ActorUser,
//	ActorKey, Team, Action, Outcome, Code, Reason, Store, Bucket,
//	ObjectKey, UploadID, GrantID, Method, ExpiresAt, ClientIP, UserAgent,
//	Target, PrevHash (32 bytes)
//
// Strings are their exact bytes; instants are UTC RFC 3339 with six
// fractional digits ("2006-01-02T15:04:05.000000Z", sub-microsecond
// digits cut), or empty when zero. ID is not written: it equals Seq. Hash
// is not written: it is the digest of this encoding.
func Encode(dst []byte, e *signet.AuditEvent) []byte {
	dst = appendField(dst, EntryTag)
	dst = appendSeq(dst, e.Seq)
	dst = appendTime(dst, e.Time)
	for _, s := range [...]string{e.RequestID, e.ActorUser, e.ActorKey, e.Team, e.Action, e.Outcome,
		string(e.Code), e.Reason, e.Store, e.Bucket, e.ObjectKey, e.UploadID, e.GrantID, e.Method} {
		dst = appendField(dst, s)
	}
	dst = appendTime(dst, e.ExpiresAt)
	for _, s := range [...]string{e.ClientIP, e.UserAgent, e.Target} {
		dst = appendField(dst, s)
	}
	return appendField(dst, e.PrevHash[:])
}

// Hash returns the chain hash of e: SHA-256 over Encode(e), which covers
// e.PrevHash and so, through it, every event before e.
func Hash(e *signet.AuditEvent) signet.AuditHash {
	var buf [512]byte
	return sha256.Sum256(Encode(buf[:0], e))
}

// Chain links events onto a log whose last event has hash prev (zero for
// an empty log): it sets each event's PrevHash and Hash, in order, and
// returns the Hash of the last one, the new head (prev if events is
// empty). Seq and every other field must hold their final, stored values:
// times in UTC, truncated to the microsecond.
func Chain(prev signet.AuditHash, events ...*signet.AuditEvent) signet.AuditHash {
	buf := make([]byte, 0, 512)
	for _, e := range events {
		e.PrevHash = prev
		buf = Encode(buf[:0], e)
		e.Hash = sha256.Sum256(buf)
		prev = e.Hash
	}
	return prev
}
