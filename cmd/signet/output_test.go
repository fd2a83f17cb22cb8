package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	sighttp "github.com/signetdev/signet/http"
)

func TestTableCell(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"datasets/a b.csv", "datasets/a b.csv"},
		{"héllo 世界", "héllo 世界"},
		{"x\n999\tadmin", `x\n999\tadmin`},
		{"\x1b]0;pwned\a\x1b[2J", `\x1b]0;pwned\a\x1b[2J`},
		{"del\x7f c1\u0085\u009b", `del\x7f c1\u0085\u009b`},
		{"bidi\u202egnp.exe", `bidi\u202egnp.exe`},
		{"bad\xff\xc3", `bad\xff\xc3`},
		{`a\nb`, `a\\nb`}, // text that looks like an escape is not one
		{"\r\v\f\x00", `\r\v\f\x00`},
	} {
		if got := tableCell(tt.in); got != tt.want {
			t.Errorf("tableCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// rawControl reports the first byte of s that a table must never print:
// a control character other than the newline ending each row, or a byte
// that is not UTF-8.
func rawControl(s string) (byte, bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			return s[i], true
		}
		i += size
	}
	return 0, false
}

// TestTableEscapes has an attacker-chosen object key, refused and
// recorded byte for byte, try to forge a row of `signet audit list` and
// reach the terminal with escape sequences: the table keeps one line per
// event and prints no control byte, while --json keeps the key exact.
func TestTableEscapes(t *testing.T) {
	admin := serverWithTeams(t)
	forged := "x\n999\t2026-01-01T00:00:00Z\tadmin\tml\tteam.delete\tallowed\x1b]0;owned\a\x1b[2J\u0085\u202e\xff"
	admin.run("presign", "get", "default", forged)

	table := admin.must("audit", "list", "--limit", "1000")
	var evs []*signet.AuditEvent
	if err := json.Unmarshal([]byte(admin.must("audit", "list", "--limit", "1000", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	if b, ok := rawControl(table); ok {
		t.Errorf("audit list printed the raw byte %#x:\n%q", b, table)
	}
	// The --json read is one event more than the table showed: the
	// table's own audit.read.
	if lines := strings.Count(table, "\n"); lines != len(evs) {
		t.Errorf("audit list printed %d lines for %d events; want a header and one line each:\n%s", lines, len(evs)-1, table)
	}
	if strings.Contains(table, "\n999") {
		t.Errorf("audit list shows a forged row:\n%s", table)
	}
	found := false
	for _, e := range evs {
		found = found || e.ObjectKey == strings.ToValidUTF8(forged, "\uFFFD")
	}
	if !found {
		t.Errorf("audit list --json lacks the refused key %q", forged)
	}

	// Every table goes through the same printer.
	var out bytes.Buffer
	env := &Env{Stdout: &out}
	env.print(nil, []string{"A", "B"}, func(add func(...any)) { add("one\ttwo", "three\nfour") })
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Errorf("print wrote %d lines for one row:\n%s", got, out.String())
	}
}

// TestAuditListDetail checks that the DETAIL column of `signet audit
// list` shows both whom an admin change was about and its reason.
func TestAuditListDetail(t *testing.T) {
	admin := serverWithTeams(t, "ml")
	admin.must("user", "create", "alice")
	admin.must("member", "add", "ml", "alice", "--role", "admin")
	table := admin.must("audit", "list", "--action", "member.add")
	var row string
	for _, l := range strings.Split(table, "\n") {
		if strings.Contains(l, "member.add") {
			row = l
		}
	}
	if !strings.Contains(row, "alice") || !strings.Contains(row, "role admin") {
		t.Errorf("audit list shows member.add as %q; want its target alice and its reason, role admin\n%s", row, table)
	}
}

// TestPageLimit checks that --limit outside 1-1000 is refused as a usage
// error naming the range, by audit list and audit usage, rather than
// silently giving the default page; and that the client sends a
// negative limit on, for the server to refuse, for audit and usage pages.
func TestPageLimit(t *testing.T) {
	admin := serverWithTeams(t, "ml")
	for _, args := range [][]string{
		{"audit", "list", "--limit", "0"},
		{"audit", "list", "--limit", "-1"},
		{"audit", "list", "--limit", "1001", "--json"},
		{"audit", "usage", "--team", "ml", "--limit", "0"},
		{"audit", "usage", "--limit", "-1"},
	} {
		r := admin.run(args...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "1 to 1000") {
			t.Errorf("signet %s: exit %d, stdout %q, stderr %q; want a usage error naming 1 to 1000",
				strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if r := admin.run("audit", "list", "--limit", "1"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("audit list --limit 1: exit %d, %q; want one event", r.code, r.stdout)
	}

	c := sighttp.NewClient(admin.addr, admin.token)
	if _, err := c.Audit(context.Background(), sighttp.AuditQuery{Limit: -1}); signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("Audit with Limit -1: %v; want %s", err, signet.Invalid)
	}
	if _, err := c.Usage(context.Background(), sighttp.UsageQuery{Team: "ml", Limit: -1}); signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("Usage with Limit -1: %v; want %s", err, signet.Invalid)
	}
}

// TestAuditListJSONCursor checks that `signet audit list --json` that
// stops at a full page says where the next one starts, on stderr as the
// table does, while stdout stays a JSON array of events.
func TestAuditListJSONCursor(t *testing.T) {
	admin := serverWithTeams(t, "ml", "cv")
	var page []*signet.AuditEvent
	r := admin.run("audit", "list", "--json", "--limit", "2")
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page) != 2 {
		t.Fatalf("audit list --json --limit 2: %v, %q", err, r.stdout)
	}
	var cursor string
	if f := strings.Fields(r.stderr); len(f) >= 4 && f[2] == "--cursor" {
		cursor = f[3]
	}
	if cursor != fmt.Sprint(page[1].ID) {
		t.Fatalf("audit list --json --limit 2: stderr %q; want the cursor of the next page, %d", r.stderr, page[1].ID)
	}
	var next []*signet.AuditEvent
	r = admin.run("audit", "list", "--json", "--limit", "2", "--cursor", cursor)
	if err := json.Unmarshal([]byte(r.stdout), &next); err != nil || len(next) == 0 || next[0].ID != page[1].ID+1 {
		t.Errorf("audit list --cursor %s: %v, %q; want the events after %s", cursor, err, r.stdout, cursor)
	}
	if r := admin.run("audit", "list", "--json", "--all", "--limit", "2"); r.code != 0 || r.stderr != "" {
		t.Errorf("audit list --json --all: exit %d, stderr %q; want no cursor once every page is read", r.code, r.stderr)
	}
}

// TestUnknownCommand checks that every command group refuses a word that
// names none of its commands, wherever flags stand, with a usage error
// naming the word and the group, and still shows its help when asked.
func TestUnknownCommand(t *testing.T) {
	offline := cli{tb: t}
	for _, tt := range []struct {
		args       []string
		word, path string
	}{
		{[]string{"audit", "bogus"}, "bogus", "signet audit"},
		{[]string{"team", "bogus"}, "bogus", "signet team"},
		{[]string{"presign", "delete", "ml", "x"}, "delete", "signet presign"},
		{[]string{"audit", "lsit", "--team", "ml"}, "lsit", "signet audit"},
		{[]string{"audit", "--team", "ml", "lsit"}, "lsit", "signet audit"},
		{[]string{"--json", "member", "ad", "ml", "alice"}, "ad", "signet member"},
		{[]string{"bogus"}, "bogus", "signet"},
	} {
		r := offline.run(tt.args...)
		want := fmt.Sprintf("unknown command %q for %q", tt.word, tt.path)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, want) {
			t.Errorf("signet %s: exit %d, stdout %q, stderr %q; want exit 2 and %s",
				strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, want)
		}
	}
	if r := offline.run("audit", "lsit"); !strings.Contains(r.stderr, "\tlist") {
		t.Errorf("signet audit lsit: stderr %q; want the suggestion list", r.stderr)
	}
	for _, args := range [][]string{{"audit"}, {"team", "--help"}, {"key", "-h", "--json"}} {
		if r := offline.run(args...); r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
			t.Errorf("signet %s: exit %d, stdout %q; want its help", strings.Join(args, " "), r.code, r.stdout)
		}
	}
	if r := offline.run("audit", "--bogus"); r.code != 2 || !strings.Contains(r.stderr, "--bogus") {
		t.Errorf("signet audit --bogus: exit %d, stderr %q; want a usage error naming the flag", r.code, r.stderr)
	}
}

// TestAuditVerifyJSON checks that `signet audit verify --json` prints one
// JSON document for every outcome: the head when the log is intact, and
// the first bad entry and why when it is not, still exiting 1 then.
func TestAuditVerifyJSON(t *testing.T) {
	m, token := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: token}
	for _, team := range []string{"ml", "cv", "ops"} {
		admin.must("team", "create", team)
	}
	dir := t.TempDir()
	offline := cli{tb: t}
	keyFile, cpDir := filepath.Join(dir, "key.pem"), filepath.Join(dir, "checkpoints")
	offline.must("audit", "checkpoint", "--db", filepath.Join(m.Config.DataDir, "signet.db"), "--key", keyFile, "--dir", cpDir)
	pubFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubFile, []byte(offline.must("audit", "pubkey", "--key", keyFile)), 0o644)
	export := admin.must("audit", "export")
	good := filepath.Join(dir, "good.jsonl")
	os.WriteFile(good, []byte(export), 0o644)
	bad := filepath.Join(dir, "bad.jsonl")
	edited := strings.Replace(export, `"team":"cv"`, `"team":"cw"`, 1)
	if edited == export {
		t.Fatalf("export has no team.create of cv:\n%s", export)
	}
	os.WriteFile(bad, []byte(edited), 0o644)
	var cvSeq int64
	for _, l := range strings.Split(export, "\n") {
		if strings.Contains(l, `"team":"cv"`) {
			var e struct{ Seq int64 }
			json.Unmarshal([]byte(l), &e)
			cvSeq = e.Seq
		}
	}

	type report struct {
		OK      bool
		Entries int64
		Head    *signet.AuditHead
		Failure *struct {
			Seq          int64
			Line         int
			Kind, Detail string
		}
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		ok   bool
	}{
		{"OK", []string{"--file", good}, 0, true},
		{"HashMismatch", []string{"--file", bad}, 1, false},
		// The checkpoint it read is reported on stderr.
		{"Checkpoint", []string{"--file", good, "--checkpoint", cpDir, "--pubkey", pubFile}, 0, true},
		{"CheckpointHashMismatch", []string{"--file", bad, "--checkpoint", cpDir, "--pubkey", pubFile}, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := offline.run(append([]string{"audit", "verify", "--json"}, tt.args...)...)
			var v report
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			if err := dec.Decode(&v); err != nil || dec.More() {
				t.Fatalf("exit %d, stdout %q: %v; want one JSON document", r.code, r.stdout, err)
			}
			if r.code != tt.code || v.OK != tt.ok {
				t.Errorf("exit %d, ok %v; want exit %d, ok %v", r.code, v.OK, tt.code, tt.ok)
			}
			switch {
			case tt.ok && (v.Head == nil || v.Head.Seq != v.Entries || v.Failure != nil):
				t.Errorf("report %+v; want the head of %d entries and no failure", v, v.Entries)
			case !tt.ok && (v.Failure == nil || v.Failure.Seq != cvSeq || v.Failure.Line != int(cvSeq) ||
				v.Failure.Kind != string(auditlog.HashMismatch) || v.Failure.Detail == "" || v.Entries != cvSeq-1):
				t.Errorf("report %+v, failure %+v; want a hash mismatch at entry and line %d", v, v.Failure, cvSeq)
			}
		})
	}
}

// TestAuditVerifyPartialExport checks what `signet audit verify --file`
// says of an export that starts after entry 1: it names the entry its
// first line holds, not entry 1, and says to verify it with --after, with
// which it then verifies.
func TestAuditVerifyPartialExport(t *testing.T) {
	admin := serverWithTeams(t, "ml", "cv", "ops", "qa")
	var evs []*signet.AuditEvent
	if err := json.Unmarshal([]byte(admin.must("audit", "list", "--json")), &evs); err != nil || len(evs) < 4 {
		t.Fatalf("audit list: %v, %d events", err, len(evs))
	}
	tail := filepath.Join(t.TempDir(), "tail.jsonl")
	os.WriteFile(tail, []byte(admin.must("audit", "export", "--cursor", "3")), 0o644)

	offline := cli{tb: t}
	r := wantVerify(t, offline, 1, "line 1: entry 4: unanchored start", "--file", tail)
	if !strings.Contains(r.stderr, "--after 3:HASH") || !strings.Contains(r.stderr, "--checkpoint") {
		t.Errorf("verify of an export from cursor 3: stderr %q; want the --after 3:HASH and the retention hints", r.stderr)
	}
	after := fmt.Sprintf("3:%s", evs[2].Hash)
	if r := wantVerify(t, offline, 0, "", "--file", tail, "--after", after); !strings.HasPrefix(r.stdout, "OK: ") {
		t.Errorf("verify --after %s printed %q", after, r.stdout)
	}
}
