package auditlog_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

func TestCheckpointSignVerify(t *testing.T) {
	key := mustKey(t)
	pub := key.Public().(ed25519.PublicKey)
	head := signet.AuditHead{Seq: 42, Hash: chain(1)[0].Hash}
	cp := auditlog.Sign(key, head, time.Date(2031, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600)))
	if cp.Time.Location() != time.UTC || cp.Time.Nanosecond() != 6000 {
		t.Errorf("Time = %v, want UTC at the microsecond", cp.Time)
	}
	if err := cp.Verify(pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if cp.Head() != head || cp.KeyID != auditlog.KeyID(pub) {
		t.Errorf("checkpoint %+v does not attest %+v", cp, head)
	}
	for name, change := range map[string]func(c *auditlog.Checkpoint){
		"Seq":       func(c *auditlog.Checkpoint) { c.Seq++ },
		"Hash":      func(c *auditlog.Checkpoint) { c.Hash[31] ^= 1 },
		"Time":      func(c *auditlog.Checkpoint) { c.Time = c.Time.Add(time.Microsecond) },
		"Signature": func(c *auditlog.Checkpoint) { c.Signature[0] ^= 1 },
		"Version":   func(c *auditlog.Checkpoint) { c.Version = 2 },
		"KeyID":     func(c *auditlog.Checkpoint) { c.KeyID = "0000000000000000" },
	} {
		c := *cp
		c.Signature = bytes.Clone(cp.Signature)
		change(&c)
		if err := c.Verify(pub); err == nil {
			t.Errorf("checkpoint with a changed %s verifies", name)
		}
	}
	other := mustKey(t)
	if err := cp.Verify(other.Public().(ed25519.PublicKey)); err == nil {
		t.Errorf("checkpoint verifies with another key")
	}
	// A forger who signs with his own key and claims ours.
	forged := auditlog.Sign(other, head, cp.Time)
	forged.KeyID = cp.KeyID
	if err := forged.Verify(pub); err == nil {
		t.Errorf("checkpoint signed by another key verifies")
	}
}

func TestCheckpointFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cps")
	key := mustKey(t)
	pub := key.Public().(ed25519.PublicKey)
	if cp, _, _, err := auditlog.LatestCheckpoint(dir, pub); cp != nil || err != nil {
		t.Errorf("LatestCheckpoint of a missing directory = %v, %v; want none", cp, err)
	}
	h := chain(3)
	t0 := base
	var paths []string
	for i, c := range []struct {
		seq int
		at  time.Duration
	}{{1, 0}, {3, time.Minute}, {3, 2 * time.Minute}, {2, 3 * time.Minute}} {
		cp := auditlog.Sign(key, signet.AuditHead{Seq: int64(c.seq), Hash: h[c.seq-1].Hash}, t0.Add(c.at))
		p, err := auditlog.WriteCheckpoint(dir, cp)
		if err != nil {
			t.Fatalf("WriteCheckpoint %d: %v", i, err)
		}
		back, err := auditlog.ReadCheckpoint(p)
		if err != nil || back.Verify(pub) != nil || back.Seq != cp.Seq || !back.Time.Equal(cp.Time) {
			t.Errorf("ReadCheckpoint(%s) = %+v, %v", p, back, err)
		}
		paths = append(paths, p)
	}
	// A forged checkpoint further along, and junk, are passed over.
	forged := auditlog.Sign(mustKey(t), signet.AuditHead{Seq: 99}, t0)
	forged.KeyID = auditlog.KeyID(pub)
	if _, err := auditlog.WriteCheckpoint(dir, forged); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "checkpoint-99999999999999999999-x.json"), []byte("{"), 0o644)
	cp, p, skipped, err := auditlog.LatestCheckpoint(dir, pub)
	if err != nil || cp == nil || p != paths[2] || skipped != 2 {
		t.Errorf("LatestCheckpoint = %+v, %s, %d skipped, %v; want %s, 2 skipped", cp, p, skipped, err, paths[2])
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit-checkpoint.key")
	key, created, err := auditlog.LoadOrCreateKey(path)
	if err != nil || !created || len(key) != ed25519.PrivateKeySize {
		t.Fatalf("LoadOrCreateKey (new) = %d-byte key, created %v, %v", len(key), created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	again, created, err := auditlog.LoadOrCreateKey(path)
	if err != nil || created || !again.Equal(key) {
		t.Errorf("LoadOrCreateKey (existing) = created %v, same %v, %v", created, again.Equal(key), err)
	}
	pub := key.Public().(ed25519.PublicKey)
	pubPath := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubPath, auditlog.MarshalPublicKey(pub), 0o644)
	for _, p := range []string{pubPath, path} {
		got, err := auditlog.ReadPublicKey(p)
		if err != nil || !got.Equal(pub) {
			t.Errorf("ReadPublicKey(%s) = %v", p, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "junk"), []byte("not a key"), 0o600)
	if _, err := auditlog.ReadKey(filepath.Join(dir, "junk")); err == nil {
		t.Errorf("ReadKey of junk succeeded")
	}
	if _, err := auditlog.ReadPublicKey(filepath.Join(dir, "junk")); err == nil {
		t.Errorf("ReadPublicKey of junk succeeded")
	}
}
