package storetest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// RunRetention runs the audit retention cases (auditlog.Retention) on a
// store whose transactions implement auditlog.Pruner. open must return a
// fresh, empty store for each call.
func RunRetention(t *testing.T, open func(t *testing.T) signet.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, signet.Store)
	}{
		{"OK", testRetentionOK},
		{"Batches", testRetentionBatches},
		{"Idle", testRetentionIdle},
		{"CheckpointMismatch", testRetentionCheckpointMismatch},
		{"Usage", testRetentionUsage},
		{"UsageOfKeptGrants", testRetentionUsageOfKeptGrants},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

// retentionLog appends n events, at old (days ago, a minute apart), except
// those in young, which happened an hour ago.
func retentionLog(t *testing.T, s signet.Store, n int, young ...int) []*signet.AuditEvent {
	t.Helper()
	now := time.Now()
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		seq := i + 1
		at := now.Add(-10*24*time.Hour + time.Duration(seq)*time.Minute)
		for _, y := range young {
			if y == seq {
				at = now.Add(-time.Hour)
			}
		}
		evs[i] = &signet.AuditEvent{Time: at, Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
			Team: "ml", ObjectKey: fmt.Sprintf("k/%d", seq)}
	}
	appendEvents(t, s, evs...)
	return evs
}

type cpFixture struct {
	key ed25519.PrivateKey
	pub ed25519.PublicKey
	dir string
}

func newCPFixture(t *testing.T) *cpFixture {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cpFixture{key: key, pub: pub, dir: t.TempDir()}
}

// sign writes a checkpoint of entry e.
func (f *cpFixture) sign(t *testing.T, seq int64, hash signet.AuditHash) *auditlog.Checkpoint {
	t.Helper()
	cp := auditlog.Sign(f.key, signet.AuditHead{Seq: seq, Hash: hash}, time.Now())
	if _, err := auditlog.WriteCheckpoint(f.dir, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *cpFixture) retention(s signet.Store, batch int64) *auditlog.Retention {
	return &auditlog.Retention{Store: s, MaxAge: 5 * 24 * time.Hour, Dir: f.dir, Pub: f.pub, Actor: "signet", Batch: batch}
}

func firstSeq(t *testing.T, s signet.Store) int64 {
	t.Helper()
	evs := audit(t, s, signet.AuditFilter{Limit: 1})
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Seq
}

// testRetentionOK: entries 1 to 30, of which 15 and 21 to 30 are young;
// checkpoints at 10, 20, 25 and 30. Only 1 to 10 may go: 15 is young, and
// no checkpoint lies between 10 and 14.
func testRetentionOK(t *testing.T, s signet.Store) {
	young := []int{15, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
	evs := retentionLog(t, s, 30, young...)
	f := newCPFixture(t)
	r := f.retention(s, 0)

	// No checkpoint: nothing goes.
	pruned, wait, err := r.Prune(t.Context())
	if err != nil || len(pruned) != 0 || !strings.Contains(wait, "no checkpoint") {
		t.Fatalf("Prune without checkpoints = %v, %q, %v; want nothing, waiting for a checkpoint", pruned, wait, err)
	}
	cps := map[int64]*auditlog.Checkpoint{}
	for _, seq := range []int64{10, 20, 25, 30} {
		cps[seq] = f.sign(t, seq, evs[seq-1].Hash)
	}
	// A checkpoint of entry 14 by another key, and a file named as one of
	// entry 13 that holds another: both are passed over.
	_, otherKey, _ := ed25519.GenerateKey(nil)
	if _, err := auditlog.WriteCheckpoint(f.dir, auditlog.Sign(otherKey, signet.AuditHead{Seq: 14, Hash: evs[13].Hash}, time.Now())); err != nil {
		t.Fatal(err)
	}
	liar := auditlog.Sign(f.key, signet.AuditHead{Seq: 12, Hash: evs[11].Hash}, time.Now())
	if p, err := auditlog.WriteCheckpoint(f.dir, liar); err != nil {
		t.Fatal(err)
	} else if err := os.Rename(p, strings.Replace(p, liar.FileName()[:31], "checkpoint-00000000000000000013", 1)); err != nil {
		t.Fatal(err)
	}
	pruned, _, err = r.Prune(t.Context())
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if len(pruned) != 1 || pruned[0].From != 1 || pruned[0].Through != 10 || pruned[0].Checkpoint.Seq != 10 {
		t.Fatalf("Prune = %+v; want entries 1 to 10, at checkpoint 10", pruned)
	}
	if got := firstSeq(t, s); got != 11 {
		t.Errorf("the log starts at %d after pruning, want 11", got)
	}
	// Nothing younger than the retention, nor past the last checkpoint
	// before it, went.
	left := audit(t, s, signet.AuditFilter{Limit: 1000})
	if len(left) != 21 || left[len(left)-1].Action != signet.ActionAuditPrune {
		t.Fatalf("%d entries left, the last %s; want 20 and the prune entry", len(left), left[len(left)-1].Action)
	}
	for i, e := range left[:20] {
		if e.Seq != int64(11+i) || e.Hash != evs[10+i].Hash {
			t.Errorf("entry %d left is %d, want %d unchanged", i, e.Seq, 11+i)
		}
	}
	// Pruning is audited, in the log that remains.
	pe := audit(t, s, signet.AuditFilter{Action: signet.ActionAuditPrune})
	if len(pe) != 1 || pe[0].Seq != 31 || pe[0].Target != "1-10" || pe[0].ActorUser != "signet" ||
		!strings.Contains(pe[0].Reason, "checkpoint 10 (hash "+cps[10].Hash.String()) {
		t.Errorf("prune entries = %+v; want one, entry 31, for 1-10 at checkpoint 10", pe)
	}
	// A second run finds old entries (11 to 14) but no checkpoint for
	// them.
	pruned, wait, err = r.Prune(t.Context())
	if err != nil || len(pruned) != 0 || !strings.Contains(wait, "entries 11 to 14") {
		t.Errorf("second Prune = %v, %q, %v; want nothing, 11 to 14 waiting", pruned, wait, err)
	}

	// The pruned log verifies from its start with the checkpoint it was
	// pruned at, and not without it.
	res, err := auditlog.VerifyStore(t.Context(), s, signet.AuditHead{}, cps[10], cps[30])
	if err != nil || res.PrunedThrough != 10 || res.Entries != 21 || res.Checkpoints != 2 {
		t.Errorf("VerifyStore with checkpoints 10 and 30 = %+v, %v; want 21 entries after 10", res, err)
	}
	_, err = auditlog.VerifyStore(t.Context(), s, signet.AuditHead{}, cps[30])
	wantKind(t, err, auditlog.Unanchored)
	_, err = auditlog.VerifyStore(t.Context(), s, signet.AuditHead{})
	wantKind(t, err, auditlog.Unanchored)

	// The checkpointer carries on from its directory.
	c := &auditlog.Checkpointer{Store: s, Key: f.key, Dir: f.dir}
	if cp, _, err := c.Checkpoint(t.Context()); err != nil || cp.Seq != 31 {
		t.Errorf("Checkpoint after pruning = %v, %v; want entry 31", cp, err)
	}
}

// testRetentionBatches: with a batch of 6 and checkpoints every 5
// entries, 20 old entries go in four prunes, each audited.
func testRetentionBatches(t *testing.T, s signet.Store) {
	evs := retentionLog(t, s, 24, 21, 22, 23, 24)
	f := newCPFixture(t)
	for seq := int64(5); seq <= 24; seq += 5 {
		f.sign(t, seq, evs[seq-1].Hash)
	}
	pruned, _, err := f.retention(s, 6).Prune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pruned {
		got = append(got, auditlog.PruneTarget(p.From, p.Through))
	}
	if strings.Join(got, " ") != "1-5 6-10 11-15 16-20" {
		t.Errorf("pruned %v; want 1-5 6-10 11-15 16-20", got)
	}
	if n := len(audit(t, s, signet.AuditFilter{Action: signet.ActionAuditPrune})); n != 4 {
		t.Errorf("%d prune entries, want 4", n)
	}
	cp20, err := auditlog.CheckpointsBetween(f.dir, f.pub, 20, 20)
	if err != nil || len(cp20) != 1 {
		t.Fatalf("checkpoint 20: %v, %v", cp20, err)
	}
	if res, err := auditlog.VerifyStore(t.Context(), s, signet.AuditHead{}, cp20...); err != nil || res.PrunedThrough != 20 {
		t.Errorf("VerifyStore = %+v, %v", res, err)
	}
}

// testRetentionIdle: every entry is old and the latest checkpoint is the
// head, as after a long idle spell: all of them go, the log holds the
// prune entry alone, and the checkpointer, whose last checkpoint is the
// entry pruned last, carries on.
func testRetentionIdle(t *testing.T, s signet.Store) {
	evs := retentionLog(t, s, 8)
	f := newCPFixture(t)
	c := &auditlog.Checkpointer{Store: s, Key: f.key, Dir: f.dir}
	cp, _, err := c.Checkpoint(t.Context())
	if err != nil || cp.Seq != 8 || cp.Hash != evs[7].Hash {
		t.Fatalf("Checkpoint = %v, %v", cp, err)
	}
	pruned, _, err := f.retention(s, 0).Prune(t.Context())
	if err != nil || len(pruned) != 1 || pruned[0].Through != 8 {
		t.Fatalf("Prune = %+v, %v; want 1 to 8", pruned, err)
	}
	left := audit(t, s, signet.AuditFilter{})
	if len(left) != 1 || left[0].Seq != 9 || left[0].PrevHash != evs[7].Hash {
		t.Fatalf("left %d entries; want the prune entry 9, linked to 8", len(left))
	}
	if cp, _, err := c.Checkpoint(t.Context()); err != nil || cp.Seq != 9 {
		t.Errorf("Checkpoint after pruning at its last checkpoint = %v, %v; want entry 9", cp, err)
	}
	if res, err := auditlog.VerifyStore(t.Context(), s, signet.AuditHead{}, cp); err != nil || res.Entries != 1 {
		t.Errorf("VerifyStore = %+v, %v", res, err)
	}
	// The prune entry is young: nothing more goes.
	if pruned, wait, err := f.retention(s, 0).Prune(t.Context()); err != nil || len(pruned) != 0 || wait == "" {
		t.Errorf("Prune again = %v, %q, %v; want nothing", pruned, wait, err)
	}
}

// testRetentionCheckpointMismatch: a checkpoint (validly signed) whose
// hash is not the log's: the log is not the one signed, so nothing is
// deleted and the fault reported.
func testRetentionCheckpointMismatch(t *testing.T, s signet.Store) {
	evs := retentionLog(t, s, 12)
	f := newCPFixture(t)
	f.sign(t, 10, evs[8].Hash)
	_, _, err := f.retention(s, 0).Prune(t.Context())
	wantKind(t, err, auditlog.CheckpointMismatch)
	if got := firstSeq(t, s); got != 1 {
		t.Errorf("the log starts at %d after a refused prune, want 1", got)
	}
	if n := len(audit(t, s, signet.AuditFilter{})); n != 12 {
		t.Errorf("%d entries after a refused prune, want 12", n)
	}
}

func wantKind(t *testing.T, err error, kind auditlog.Kind) {
	t.Helper()
	var ve *auditlog.VerifyError
	if !errors.As(err, &ve) || ve.Kind != kind {
		t.Errorf("error = %v, want a %s", err, kind)
	}
}

// testRetentionUsage: usage events older than the retention age go with
// the audit entries (they hold client addresses), younger ones stay, and
// the deletion is recorded; a prune with nothing old records nothing.
func testRetentionUsage(t *testing.T, s signet.Store) {
	now := time.Now()
	appendUsage(t, s,
		usageEvent("g-old", "192.0.2.1", 200, now.Add(-10*24*time.Hour)),
		usageEvent("g-old", "192.0.2.1", 200, now.Add(-6*24*time.Hour)),
		usageEvent("g-new", "192.0.2.2", 200, now.Add(-time.Hour)))
	f := newCPFixture(t)
	if _, _, err := f.retention(s, 0).Prune(t.Context()); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	us := grantUsage(t, s, "g-old", "g-new")
	if len(us) != 1 || us[0].GrantID != "g-new" {
		t.Errorf("usage left %+v, want only g-new's", us)
	}
	evs := audit(t, s, signet.AuditFilter{Action: signet.ActionUsagePrune})
	if len(evs) != 1 || evs[0].Reason == "" || evs[0].ActorUser != "signet" {
		t.Fatalf("usage.prune entries %+v, want one", evs)
	}
	if _, _, err := f.retention(s, 0).Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if evs := audit(t, s, signet.AuditFilter{Action: signet.ActionUsagePrune}); len(evs) != 1 {
		t.Errorf("%d usage.prune entries after a prune with nothing old, want still 1", len(evs))
	}
}

// testRetentionUsageOfKeptGrants: a prune deletes the usage events of
// the grants it pruned, but not those of grants whose entries it kept,
// however old the events: entries 1 to 12 are old, 13 young, and the
// only checkpoint is of entry 8, so 9 to 12 stay, and so do the uses of
// their grants, also one the store dated before the grant was issued (a
// store whose clock is behind signet's). Uses of pruned grants, and of
// grants never issued, go once older than the cut-off.
func testRetentionUsageOfKeptGrants(t *testing.T, s signet.Store) {
	now := time.Now()
	evs := make([]*signet.AuditEvent, 13)
	for i := range evs {
		evs[i] = &signet.AuditEvent{Time: now.Add(-10*24*time.Hour + time.Duration(i+1)*time.Minute),
			Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, Team: "ml", ObjectKey: fmt.Sprintf("k/%d", i+1)}
	}
	evs[12].Time = now.Add(-time.Hour)
	evs[2].GrantID, evs[9].GrantID, evs[12].GrantID = "g-pruned", "g-kept", "g-young"
	appendEvents(t, s, evs...)
	appendUsage(t, s,
		usageEvent("g-pruned", "192.0.2.1", 200, evs[2].Time.Add(time.Minute)), // goes
		usageEvent("g-pruned", "192.0.2.1", 200, now.Add(-time.Hour)),          // young: stays
		usageEvent("g-kept", "192.0.2.2", 200, evs[9].Time.Add(time.Minute)),
		usageEvent("g-kept", "192.0.2.2", 200, evs[8].Time.Add(-time.Minute)), // before entry 9: a clock behind
		usageEvent("g-never", "192.0.2.3", 200, now.Add(-6*24*time.Hour)),     // goes
		usageEvent("g-young", "192.0.2.4", 200, now.Add(-30*time.Minute)))
	f := newCPFixture(t)
	f.sign(t, 8, evs[7].Hash)
	pruned, _, err := f.retention(s, 0).Prune(t.Context())
	if err != nil || len(pruned) != 1 || pruned[0].Through != 8 {
		t.Fatalf("Prune = %+v, %v; want entries 1 to 8", pruned, err)
	}
	uses := map[string]int64{}
	for _, u := range grantUsage(t, s, "g-pruned", "g-kept", "g-never", "g-young") {
		uses[u.GrantID] += u.Uses
	}
	if want := map[string]int64{"g-pruned": 1, "g-kept": 2, "g-young": 1}; !maps.Equal(uses, want) {
		t.Errorf("uses left %v, want %v", uses, want)
	}
	up := audit(t, s, signet.AuditFilter{Action: signet.ActionUsagePrune})
	if len(up) != 1 || !strings.Contains(up[0].Reason, " 2 usage events") {
		for _, e := range up {
			t.Logf("usage.prune: %s", e.Reason)
		}
		t.Errorf("%d usage.prune entries; want one that counts 2 events", len(up))
	}
	// The kept grant is still reported as used.
	var issued []*signet.AuditEvent
	mustView(t, s, func(tx signet.Tx) (err error) {
		issued, err = usageTx(t, tx).IssuedGrants(signet.GrantFilter{Team: "ml"})
		return err
	})
	if len(issued) != 2 || issued[0].GrantID != "g-kept" || issued[1].GrantID != "g-young" {
		t.Errorf("issued grants left %d; want g-kept and g-young", len(issued))
	}
}
