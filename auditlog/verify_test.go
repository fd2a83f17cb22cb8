package auditlog_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// jsonLines encodes evs one per line, as the export does.
func jsonLines(t *testing.T, evs []*signet.AuditEvent) []string {
	t.Helper()
	lines := make([]string, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = string(b)
	}
	return lines
}

func verifyLines(lines []string, anchor signet.AuditHead, cps ...*auditlog.Checkpoint) (auditlog.Result, error) {
	return auditlog.VerifyJSONLines(strings.NewReader(strings.Join(lines, "\n")+"\n"), anchor, cps...)
}

// wantFault checks that err is a *VerifyError of kind at seq and line.
func wantFault(t *testing.T, err error, kind auditlog.Kind, seq int64, line int) {
	t.Helper()
	var ve *auditlog.VerifyError
	if !errors.As(err, &ve) {
		t.Errorf("error = %v, want a %s at entry %d", err, kind, seq)
		return
	}
	if ve.Kind != kind || ve.Seq != seq || ve.Line != line {
		t.Errorf("fault = %s at entry %d line %d (%v); want %s at entry %d line %d", ve.Kind, ve.Seq, ve.Line, err, kind, seq, line)
	}
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// rechain re-links evs[from:] onto evs[from-1] (or the start), as an
// insider who knows the format would after changing an entry.
func rechain(evs []*signet.AuditEvent, from int) {
	var prev signet.AuditHash
	if from > 0 {
		prev = evs[from-1].Hash
	}
	auditlog.Chain(prev, evs[from:]...)
}

func clone(evs []*signet.AuditEvent) []*signet.AuditEvent {
	out := make([]*signet.AuditEvent, len(evs))
	for i, e := range evs {
		c := *e
		out[i] = &c
	}
	return out
}

// TestVerifyTampering mutates a JSON-lines export of a clean log of ten
// entries in every way an insider could; each mutation is found, and the
// first bad entry named.
func TestVerifyTampering(t *testing.T) {
	const n = 10
	clean := chain(n)
	key := mustKey(t)
	cp := auditlog.Sign(key, signet.AuditHead{Seq: clean[n-1].Seq, Hash: clean[n-1].Hash}, base.Add(time.Minute))
	lines := jsonLines(t, clean)

	t.Run("Clean", func(t *testing.T) {
		res, err := verifyLines(lines, signet.AuditHead{}, cp)
		if err != nil || res.Entries != n || res.Checkpoints != 1 || res.Head.Hash != clean[n-1].Hash {
			t.Errorf("clean log: %+v, %v", res, err)
		}
	})
	t.Run("EditField", func(t *testing.T) {
		l := slices.Clone(lines)
		l[3] = strings.Replace(l[3], `"reason":"why"`, `"reason":"because"`, 1)
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.HashMismatch, 4, 4)
	})
	t.Run("EditTime", func(t *testing.T) {
		evs := clone(clean)
		evs[3].Time = evs[3].Time.Add(-time.Hour)
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.HashMismatch, 4, 4)
	})
	t.Run("EditAndRehash", func(t *testing.T) {
		evs := clone(clean)
		evs[3].ObjectKey = "ml/innocent"
		evs[3].Hash = auditlog.Hash(evs[3])
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.BrokenLink, 5, 5)
	})
	t.Run("RewriteHistory", func(t *testing.T) {
		// Rewritten and re-chained to the end: only a checkpoint tells.
		evs := clone(clean)
		evs[3].Outcome = signet.OutcomeDenied
		rechain(evs, 3)
		if _, err := verifyLines(jsonLines(t, evs), signet.AuditHead{}); err != nil {
			t.Errorf("a consistently rewritten log without a checkpoint: %v", err)
		}
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{}, cp)
		wantFault(t, err, auditlog.CheckpointMismatch, n, n)
	})
	t.Run("Delete", func(t *testing.T) {
		l := slices.Delete(slices.Clone(lines), 3, 4)
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Gap, 4, 4)
	})
	t.Run("DeleteFirst", func(t *testing.T) {
		// Without a checkpoint of entry 1 that could be retention.
		_, err := verifyLines(lines[1:], signet.AuditHead{})
		wantFault(t, err, auditlog.Unanchored, 1, 1)
	})
	t.Run("Insert", func(t *testing.T) {
		// A forged entry 4, properly chained onto 3, before the real 4.
		forged := event(4)
		forged.Reason = "forged"
		auditlog.Chain(clean[2].Hash, forged)
		l := slices.Insert(slices.Clone(lines), 3, jsonLines(t, []*signet.AuditEvent{forged})[0])
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Duplicate, 4, 5)
	})
	t.Run("InsertRenumbered", func(t *testing.T) {
		// The forged entry takes seq 4 and the rest move up by one.
		evs := clone(clean)
		forged := event(4)
		evs = slices.Insert(evs, 3, forged)
		for i, e := range evs {
			e.ID, e.Seq = int64(i+1), int64(i+1)
		}
		auditlog.Chain(evs[2].Hash, forged)
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.HashMismatch, 5, 5)
	})
	t.Run("AppendForeign", func(t *testing.T) {
		extra := event(n + 1)
		auditlog.Chain(signet.AuditHash{1}, extra)
		_, err := verifyLines(append(slices.Clone(lines), jsonLines(t, []*signet.AuditEvent{extra})...), signet.AuditHead{})
		wantFault(t, err, auditlog.BrokenLink, n+1, n+1)
	})
	t.Run("Reorder", func(t *testing.T) {
		l := slices.Clone(lines)
		l[3], l[4] = l[4], l[3]
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.OutOfOrder, 5, 4)
	})
	t.Run("ReorderFar", func(t *testing.T) {
		l := slices.Clone(lines)
		l[2], l[7] = l[7], l[2]
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Gap, 3, 3)
	})
	t.Run("ReorderContent", func(t *testing.T) {
		// Two entries swap contents but keep their seqs.
		evs := clone(clean)
		evs[3].RequestID, evs[4].RequestID = "b", "a"
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.HashMismatch, 4, 4)
	})
	t.Run("Duplicate", func(t *testing.T) {
		l := slices.Insert(slices.Clone(lines), 4, lines[3])
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Duplicate, 4, 5)
	})
	t.Run("Truncate", func(t *testing.T) {
		l := lines[:n-3]
		if _, err := verifyLines(l, signet.AuditHead{}); err != nil {
			t.Errorf("a truncated log without a checkpoint: %v", err)
		}
		_, err := verifyLines(l, signet.AuditHead{}, cp)
		wantFault(t, err, auditlog.Truncated, n-2, 0)
	})
	t.Run("TruncateAll", func(t *testing.T) {
		_, err := verifyLines(nil, signet.AuditHead{}, cp)
		wantFault(t, err, auditlog.Truncated, 1, 0)
	})
	t.Run("RestoreOldBackup", func(t *testing.T) {
		// A backup of the first six entries, restored, then written on:
		// the log has as many entries as the checkpoint, but not its own.
		evs := clone(clean[:6])
		for i := int64(7); i <= n; i++ {
			e := event(i)
			e.RequestID = "after-restore"
			evs = append(evs, e)
		}
		rechain(evs, 6)
		if _, err := verifyLines(jsonLines(t, evs), signet.AuditHead{}); err != nil {
			t.Errorf("restored and written on, without a checkpoint: %v", err)
		}
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{}, cp)
		wantFault(t, err, auditlog.CheckpointMismatch, n, n)
	})
	t.Run("EditID", func(t *testing.T) {
		evs := clone(clean)
		evs[3].ID = 40
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.Malformed, 4, 4)
	})
	t.Run("SubMicrosecond", func(t *testing.T) {
		l := slices.Clone(lines)
		l[3] = strings.Replace(l[3], `09.127456Z"`, `09.127456001Z"`, 1)
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Malformed, 4, 4)
	})
	t.Run("Garbage", func(t *testing.T) {
		l := slices.Clone(lines)
		l[3] = `{"seq": 4, "hash": "nothex"}`
		_, err := verifyLines(l, signet.AuditHead{})
		wantFault(t, err, auditlog.Malformed, 0, 4)
	})
	t.Run("NonZeroStart", func(t *testing.T) {
		evs := clone(clean)
		rechain(evs, 0)
		auditlog.Chain(signet.AuditHash{9}, evs...)
		_, err := verifyLines(jsonLines(t, evs), signet.AuditHead{})
		wantFault(t, err, auditlog.BrokenLink, 1, 1)
	})
	t.Run("Anchor", func(t *testing.T) {
		anchor := signet.AuditHead{Seq: 5, Hash: clean[4].Hash}
		res, err := verifyLines(lines[5:], anchor, cp)
		if err != nil || res.Entries != n-5 || res.Checkpoints != 1 {
			t.Errorf("export after entry 5, anchored: %+v, %v", res, err)
		}
		_, err = verifyLines(lines[5:], signet.AuditHead{Seq: 5, Hash: clean[3].Hash})
		wantFault(t, err, auditlog.BrokenLink, 6, 1)
	})
	t.Run("BlankLines", func(t *testing.T) {
		l := append([]string{""}, lines...)
		l = slices.Insert(l, 5, "  ")
		if res, err := verifyLines(l, signet.AuditHead{}); err != nil || res.Entries != n {
			t.Errorf("blank lines: %+v, %v", res, err)
		}
	})
}

// TestVerifyRawBytes: fields that are not valid UTF-8 survive the export
// byte for byte, and changing those bytes is detected.
func TestVerifyRawBytes(t *testing.T) {
	evs := chain(3)
	evs[1].UserAgent = "agent/1 \xe2\x82"
	evs[1].ObjectKey = "ml/\xff\x00"
	rechain(evs, 1)
	lines := jsonLines(t, evs)
	if !strings.Contains(lines[1], `"raw":{`) {
		t.Errorf("line without raw bytes: %s", lines[1])
	}
	if strings.Contains(lines[0], `"raw"`) {
		t.Errorf("raw field on a valid UTF-8 event: %s", lines[0])
	}
	var back signet.AuditEvent
	if err := json.Unmarshal([]byte(lines[1]), &back); err != nil || back != *evs[1] {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, evs[1])
	}
	if res, err := verifyLines(lines, signet.AuditHead{}); err != nil || res.Entries != 3 {
		t.Errorf("log with raw bytes: %+v, %v", res, err)
	}
	// The raw value is authoritative: editing it is tampering.
	var m map[string]any
	json.Unmarshal([]byte(lines[1]), &m)
	m["raw"].(map[string]any)["object_key"] = "bWwveA==" // "ml/x"
	b, _ := json.Marshal(m)
	l := slices.Clone(lines)
	l[1] = string(b)
	_, err := verifyLines(l, signet.AuditHead{})
	wantFault(t, err, auditlog.HashMismatch, 2, 2)
	// A raw value for a field that does not exist is not an event.
	m["raw"].(map[string]any)["nope"] = "eA=="
	b, _ = json.Marshal(m)
	l[1] = string(b)
	_, err = verifyLines(l, signet.AuditHead{})
	wantFault(t, err, auditlog.Malformed, 0, 2)
}

// TestVerifierStoreHead: the store's own record of its head must match
// the last entry.
func TestVerifierStoreHead(t *testing.T) {
	evs := chain(5)
	run := func(head signet.AuditHead) error {
		v := auditlog.NewVerifier(signet.AuditHead{})
		for _, e := range evs {
			if err := v.Add(e); err != nil {
				return err
			}
		}
		return v.Finish(&head)
	}
	if err := run(signet.AuditHead{Seq: 5, Hash: evs[4].Hash}); err != nil {
		t.Errorf("matching head: %v", err)
	}
	wantFault(t, run(signet.AuditHead{Seq: 8, Hash: evs[4].Hash}), auditlog.Truncated, 6, 0)
	wantFault(t, run(signet.AuditHead{Seq: 4, Hash: evs[3].Hash}), auditlog.HeadMismatch, 5, 0)
	wantFault(t, run(signet.AuditHead{Seq: 5, Hash: evs[3].Hash}), auditlog.HeadMismatch, 5, 0)
}

// TestVerifierSticky: after a fault, every call reports it.
func TestVerifierSticky(t *testing.T) {
	evs := chain(3)
	v := auditlog.NewVerifier(signet.AuditHead{})
	evs[0].Reason = "changed"
	err := v.Add(evs[0])
	if err2 := v.Add(evs[1]); err2 != err {
		t.Errorf("second Add = %v, want the first fault %v", err2, err)
	}
	if err3 := v.Finish(nil); err3 != err {
		t.Errorf("Finish = %v, want the first fault %v", err3, err)
	}
	if v.Count() != 0 {
		t.Errorf("Count = %d, want 0", v.Count())
	}
}

// FuzzVerifyJSONLines: whatever the file holds, verification ends with
// nil or a *VerifyError naming a line or an entry, and never panics.
func FuzzVerifyJSONLines(f *testing.F) {
	evs := chain(3)
	evs[1].UserAgent = "\xff"
	rechain(evs, 1)
	var lines []string
	for _, e := range evs {
		b, _ := json.Marshal(e)
		lines = append(lines, string(b))
	}
	f.Add(strings.Join(lines, "\n"))
	f.Add(lines[1] + "\n" + lines[0])
	f.Add(`{"seq":1,"raw":{"team":"eA=="}}`)
	f.Fuzz(func(t *testing.T, data string) {
		_, err := auditlog.VerifyJSONLines(strings.NewReader(data), signet.AuditHead{})
		var ve *auditlog.VerifyError
		if err != nil && (!errors.As(err, &ve) || ve.Line == 0 && ve.Seq == 0) {
			t.Errorf("VerifyJSONLines = %v, want nil or a fault naming a line or an entry", err)
		}
	})
}
