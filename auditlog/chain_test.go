package auditlog_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

var base = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

// event returns a fully populated event number i.
func event(i int64) *signet.AuditEvent {
	return &signet.AuditEvent{
		ID:        i,
		Seq:       i,
		Time:      base.Add(time.Duration(i) * time.Millisecond),
		RequestID: "req",
		ActorUser: "alice",
		ActorKey:  "abcdefghijklmnop",
		Team:      "ml",
		Action:    signet.ActionPresignUpload,
		Outcome:   signet.OutcomeAllowed,
		Code:      signet.InvalidKey,
		Reason:    "why",
		Store:     "s3",
		Bucket:    "data",
		ObjectKey: "ml/x",
		UploadID:  "u1",
		GrantID:   "g1",
		Method:    "PUT",
		ExpiresAt: base.Add(time.Hour),
		ClientIP:  "2001:db8::1",
		UserAgent: "agent",
		Target:    "bob",
	}
}

// chain returns a clean log of n events.
func chain(n int) []*signet.AuditEvent {
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		evs[i] = event(int64(i + 1))
	}
	auditlog.Chain(signet.AuditHash{}, evs...)
	return evs
}

// TestHashGolden pins the encoding: if this changes, every existing log
// stops verifying. Change EntryTag instead and keep reading version 1.
// The value was also computed independently from docs/audit.md (a few
// lines of Python there).
func TestHashGolden(t *testing.T) {
	e := event(1)
	e.PrevHash[0] = 0xab
	const want = "2fa5308de614c5c1cdc2187cfcc8068bcc9771c5c6be1077d79456fda596594f"
	if got := auditlog.Hash(e); got.String() != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	b := auditlog.Encode(nil, e)
	if len(b) < 8 || string(b[8:8+len(auditlog.EntryTag)]) != auditlog.EntryTag {
		t.Errorf("encoding does not open with the tag: %x", b[:min(len(b), 40)])
	}
	if !bytes.Contains(b, []byte("2031-05-06T07:08:09.124456Z")) {
		t.Errorf("encoding lacks the time in UTC with six digits: %q", b)
	}
	if gotHex := hex.EncodeToString(b[len(b)-32:]); gotHex[:2] != "ab" {
		t.Errorf("encoding does not end with PrevHash: %s", gotHex)
	}
}

// TestHashCoversEveryField changes each field of an event in turn: every
// change but ID's (which must equal Seq) and Hash's own changes the hash.
// A field added to AuditEvent and forgotten in Encode fails here.
func TestHashCoversEveryField(t *testing.T) {
	orig := event(7)
	h0 := auditlog.Hash(orig)
	rt := reflect.TypeFor[signet.AuditEvent]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == "ID" || f.Name == "Hash" {
			continue
		}
		e := *orig
		v := reflect.ValueOf(&e).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Array:
			v.Index(0).SetUint(v.Index(0).Uint() ^ 1)
		case reflect.Struct: // time.Time
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Microsecond)))
		default:
			t.Errorf("field %s has kind %s, which this test does not know how to change", f.Name, v.Kind())
			continue
		}
		if auditlog.Hash(&e) == h0 {
			t.Errorf("changing %s does not change the hash", f.Name)
		}
	}
	// Zero and absent are told apart from empty strings in neighbours.
	e := *orig
	e.ExpiresAt = time.Time{}
	if auditlog.Hash(&e) == h0 {
		t.Errorf("clearing ExpiresAt does not change the hash")
	}
}

// TestHashUnambiguous: moving bytes from one field to the next changes
// the hash.
func TestHashUnambiguous(t *testing.T) {
	a, b := event(1), event(1)
	a.Team, a.Action = "ab", "c"
	b.Team, b.Action = "a", "bc"
	if auditlog.Hash(a) == auditlog.Hash(b) {
		t.Errorf("(ab, c) and (a, bc) hash alike")
	}
	a, b = event(1), event(1)
	a.Method, a.ClientIP = "", "x"
	b.Method, b.ClientIP = "x", ""
	if auditlog.Hash(a) == auditlog.Hash(b) {
		t.Errorf("an empty field next to a non-empty one is ambiguous")
	}
}

func TestChain(t *testing.T) {
	evs := chain(3)
	if evs[0].PrevHash != (signet.AuditHash{}) {
		t.Errorf("first PrevHash = %s, want zero", evs[0].PrevHash)
	}
	for i, e := range evs {
		if e.Hash != auditlog.Hash(e) {
			t.Errorf("event %d: Hash is not the digest of its encoding", i)
		}
		if i > 0 && e.PrevHash != evs[i-1].Hash {
			t.Errorf("event %d does not link to the one before", i)
		}
	}
	more := []*signet.AuditEvent{event(4)}
	if head := auditlog.Chain(evs[2].Hash, more...); head != more[0].Hash || more[0].PrevHash != evs[2].Hash {
		t.Errorf("Chain onto a head: head %s, event %+v", head, more[0])
	}
	if head := auditlog.Chain(evs[2].Hash); head != evs[2].Hash {
		t.Errorf("Chain of nothing = %s, want the head it was given", head)
	}
}

func TestAuditHashText(t *testing.T) {
	h := chain(1)[0].Hash
	b, err := h.MarshalText()
	if err != nil || len(b) != 64 {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	back, err := signet.ParseAuditHash(string(b))
	if err != nil || back != h {
		t.Errorf("ParseAuditHash(%s) = %s, %v", b, back, err)
	}
	for _, bad := range []string{"", "ab", string(b[:63]) + "g", string(b) + "00"} {
		if _, err := signet.ParseAuditHash(bad); err == nil {
			t.Errorf("ParseAuditHash(%q) succeeded", bad)
		}
	}
}
