package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/sqlite"
)

// copyDB takes a backup of the SQLite database at from into to, as
// docs/deploy.md says to while signet runs: one consistent snapshot
// (VACUUM INTO, as the sqlite3 shell's .backup), where copying the files
// would race the background checkpoints that write the database file.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	sqlOn(t, from, fmt.Sprintf("VACUUM INTO '%s'", strings.ReplaceAll(to, "'", "''")))
}

// sqlOn runs statements on a SQLite file behind signet's back, as an
// insider with access to the file would.
func sqlOn(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// wantVerify runs `signet audit verify args` and checks the exit status
// and that the output names the fault.
func wantVerify(t *testing.T, c cli, code int, fault string, args ...string) cliResult {
	t.Helper()
	r := c.run(append([]string{"audit", "verify"}, args...)...)
	if r.code != code || !strings.Contains(r.stderr, fault) {
		t.Errorf("audit verify %s: exit %d, stdout %q, stderr %q; want exit %d naming %q",
			strings.Join(args, " "), r.code, r.stdout, r.stderr, code, fault)
	}
	return r
}

// TestAuditVerify builds a real log through the API, exports it with the
// CLI, checkpoints it, then tampers with copies of the database (with
// SQL) and of the export in every way an insider could: each is detected
// and the first bad entry named.
func TestAuditVerify(t *testing.T) {
	m, token := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: token}
	for i := range 12 {
		admin.must("team", "create", fmt.Sprintf("team-%02d", i))
	}
	// A refusal, with bytes a JSON string cannot carry in the key.
	admin.run("presign", "get", "default", "bad/\xff\x00key")
	dir := t.TempDir()
	dbPath := filepath.Join(m.Config.DataDir, "signet.db")
	early := filepath.Join(dir, "early.db")
	copyDB(t, dbPath, early) // an old backup
	for i := range 8 {
		admin.must("user", "create", fmt.Sprintf("user-%d", i))
	}
	if list := admin.must("audit", "list", "--json", "--limit", "2"); !strings.Contains(list, `"seq": 2`) ||
		!strings.Contains(list, `"prev_hash": "`) || !strings.Contains(list, `"hash": "`) {
		t.Errorf("GET /v1/audit lacks the chain fields: %s", list)
	}
	export := admin.must("audit", "export")
	exportFile := filepath.Join(dir, "audit.jsonl")
	os.WriteFile(exportFile, []byte(export), 0o644)
	lines := strings.Split(strings.TrimSuffix(export, "\n"), "\n")
	if len(lines) < 20 || !strings.Contains(lines[0], `"seq":1,`) || !strings.Contains(lines[0], `"prev_hash":"0000000000`) {
		t.Fatalf("export of %d lines, first %s; want seq, prev_hash and hash", len(lines), lines[0])
	}
	n := len(lines)

	offline := cli{tb: t}
	r := wantVerify(t, offline, 0, "", "--file", exportFile)
	if !strings.Contains(r.stdout, fmt.Sprintf("OK: %d entries verified", n)) {
		t.Errorf("verify --file printed %q, want the count of %d entries", r.stdout, n)
	}
	// The live database, beside the running server.
	wantVerify(t, offline, 0, "", "--db", dbPath)

	// A signed checkpoint, and its public key.
	keyFile := filepath.Join(dir, "key.pem")
	cpDir := filepath.Join(dir, "checkpoints")
	r = offline.run("audit", "checkpoint", "--db", dbPath, "--key", keyFile, "--dir", cpDir)
	if r.code != 0 {
		t.Fatalf("audit checkpoint: %s", r.stderr)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint key: %v, %v; want mode 0600", fi, err)
	}
	pub := offline.must("audit", "pubkey", "--key", keyFile)
	if !strings.HasPrefix(pub, "-----BEGIN PUBLIC KEY-----") || strings.Contains(pub, "PRIVATE") {
		t.Fatalf("audit pubkey printed %q", pub)
	}
	pubFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubFile, []byte(pub), 0o644)
	cp := []string{"--checkpoint", cpDir, "--pubkey", pubFile}

	m.Close()
	var head int
	if db, err := sql.Open("sqlite", "file:"+dbPath); err != nil {
		t.Fatal(err)
	} else if err := db.QueryRow("SELECT last_id FROM audit_head").Scan(&head); err != nil || head < n {
		t.Fatalf("audit head %d, %v; want at least the %d exported", head, err, n)
	} else {
		db.Close()
	}
	r = wantVerify(t, offline, 0, "", append([]string{"--db", dbPath}, cp...)...)
	if !strings.Contains(r.stdout, "1 checkpoint(s) matched") {
		t.Errorf("verify with a checkpoint printed %q", r.stdout)
	}
	wantVerify(t, offline, 0, "", append([]string{"--file", exportFile}, cp...)...)
	if r := offline.run("audit", "verify", "--db", dbPath, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"entries":`) {
		t.Errorf("verify --json: %d %s %s", r.code, r.stdout, r.stderr)
	}

	tamperDB := func(name string, wantFault string, useCheckpoint bool, stmts ...string) {
		t.Run("DB/"+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.db")
			copyDB(t, dbPath, p)
			sqlOn(t, p, stmts...)
			args := []string{"--db", p}
			if useCheckpoint {
				args = append(args, cp...)
			}
			wantVerify(t, offline, 1, wantFault, args...)
		})
	}
	const cols = `occurred_at, request_id, actor_user, actor_key, team, action, outcome, code, reason, store,
		bucket, object_key, upload_id, grant_id, method, expires_at, client_ip, user_agent, target, prev_hash, hash`
	tamperDB("EditField", "entry 5: hash mismatch", false,
		"UPDATE audit_events SET outcome = 'denied' WHERE id = 5")
	// An insider who knows the format recomputes hashes: of the entry
	// alone, or of everything after it (then only a checkpoint tells).
	rewrite := func(t *testing.T, p string, rechainAll bool) {
		t.Helper()
		s, err := sqlite.OpenReadOnly(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		var evs []*signet.AuditEvent
		err = s.View(context.Background(), func(tx signet.Tx) (err error) {
			evs, err = tx.Audit(signet.AuditFilter{AfterID: 4, Limit: 1000})
			return err
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		evs[0].Outcome = signet.OutcomeDenied
		if !rechainAll {
			evs = evs[:1]
			evs[0].Hash = auditlog.Hash(evs[0])
		} else {
			auditlog.Chain(evs[0].PrevHash, evs...)
		}
		db, _ := sql.Open("sqlite", "file:"+p)
		defer db.Close()
		for _, e := range evs {
			if _, err := db.Exec("UPDATE audit_events SET outcome = ?, prev_hash = ?, hash = ? WHERE id = ?",
				e.Outcome, e.PrevHash[:], e.Hash[:], e.ID); err != nil {
				t.Fatal(err)
			}
		}
		last := evs[len(evs)-1]
		if _, err := db.Exec("UPDATE audit_head SET hash = ? WHERE last_id = ?", last.Hash[:], last.ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("DB/EditAndRehash", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "t.db")
		copyDB(t, dbPath, p)
		rewrite(t, p, false)
		wantVerify(t, offline, 1, "entry 6: broken link", "--db", p)
	})
	t.Run("DB/RewriteHistory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "t.db")
		copyDB(t, dbPath, p)
		rewrite(t, p, true)
		wantVerify(t, offline, 0, "", "--db", p)
		wantVerify(t, offline, 1, fmt.Sprintf("entry %d: checkpoint mismatch", head), append([]string{"--db", p}, cp...)...)
	})
	tamperDB("Delete", "entry 5: gap", false,
		"DELETE FROM audit_events WHERE id = 5")
	tamperDB("Insert", "entry 5: hash mismatch", false,
		"UPDATE audit_events SET id = -id WHERE id >= 5",
		"UPDATE audit_events SET id = 1 - id WHERE id < 0",
		"INSERT INTO audit_events (id, "+cols+") SELECT 5, "+cols+" FROM audit_events WHERE id = 4",
		fmt.Sprintf("UPDATE audit_head SET last_id = %d", head+1))
	tamperDB("Reorder", "entry 5: hash mismatch", false,
		"UPDATE audit_events SET id = -1 WHERE id = 5",
		"UPDATE audit_events SET id = 5 WHERE id = 6",
		"UPDATE audit_events SET id = 6 WHERE id = -1")
	tamperDB("TruncateTail", fmt.Sprintf("entry %d: truncated", head-2), false,
		fmt.Sprintf("DELETE FROM audit_events WHERE id > %d", head-3))
	tamperDB("TruncateTailAndHead", fmt.Sprintf("entry %d: truncated", head-2), true,
		fmt.Sprintf("DELETE FROM audit_events WHERE id > %d", head-3),
		fmt.Sprintf("UPDATE audit_head SET last_id = %d, hash = (SELECT hash FROM audit_events WHERE id = %[1]d)", head-3))
	tamperDB("AppendForged", fmt.Sprintf("entry %d: hash mismatch", head+1), false,
		fmt.Sprintf("INSERT INTO audit_events (id, "+cols+") SELECT %d, "+cols+" FROM audit_events WHERE id = 4", head+1),
		fmt.Sprintf("UPDATE audit_head SET last_id = %d", head+1))
	tamperDB("NullHash", "entry 3: hash mismatch", false,
		"UPDATE audit_events SET hash = NULL WHERE id = 3")
	t.Run("DB/RestoreOldBackup", func(t *testing.T) {
		wantVerify(t, offline, 0, "", "--db", early) // intact, as far as it goes
		wantVerify(t, offline, 1, "truncated", append([]string{"--db", early}, cp...)...)
	})
	t.Run("DB/Missing", func(t *testing.T) {
		r := offline.run("audit", "verify", "--db", filepath.Join(dir, "nope.db"))
		if r.code == 0 {
			t.Errorf("verify of a missing file succeeded")
		}
		if _, err := os.Stat(filepath.Join(dir, "nope.db")); err == nil {
			t.Errorf("verify created a database")
		}
	})

	tamperFile := func(name, wantFault string, useCheckpoint bool, mutate func([]string) []string) {
		t.Run("File/"+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.jsonl")
			os.WriteFile(p, []byte(strings.Join(mutate(slices.Clone(lines)), "\n")+"\n"), 0o644)
			args := []string{"--file", p}
			if useCheckpoint {
				args = append(args, cp...)
			}
			wantVerify(t, offline, 1, wantFault, args...)
		})
	}
	tamperFile("EditField", "line 5: entry 5: hash mismatch", false, func(l []string) []string {
		l[4] = strings.Replace(l[4], `"outcome":"allowed"`, `"outcome":"denied"`, 1)
		return l
	})
	tamperFile("Delete", "line 5: entry 5: gap", false, func(l []string) []string { return slices.Delete(l, 4, 5) })
	tamperFile("Insert", "line 6: entry 5: duplicate", false, func(l []string) []string { return slices.Insert(l, 4, l[4]) })
	tamperFile("Reorder", "line 5: entry 6: out of order", false, func(l []string) []string {
		l[4], l[5] = l[5], l[4]
		return l
	})
	tamperFile("Truncate", fmt.Sprintf("entry %d: truncated", n-2), true, func(l []string) []string { return l[:n-3] })
	tamperFile("Garbage", "line 3: malformed", false, func(l []string) []string {
		l[2] = "{not json"
		return l
	})

	// Usage errors.
	for _, args := range [][]string{{}, {"--db", dbPath, "--file", exportFile}, {"--db", dbPath, "--checkpoint", cpDir}} {
		if r := offline.run(append([]string{"audit", "verify"}, args...)...); r.code != 2 {
			t.Errorf("audit verify %v: exit %d, want 2", args, r.code)
		}
	}
}
