package auditsink

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/sqlite"
)

// testStore is a real SQLite store in a temporary directory.
type testStore struct {
	*sqlite.DB
	path string
}

func openStore(t *testing.T) testStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signet.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return testStore{db, path}
}

// appendN appends n events, in commits of up to 7, and returns them.
// It may be called from several goroutines.
func appendN(t *testing.T, st signet.Store, n int) []*signet.AuditEvent {
	t.Helper()
	var all []*signet.AuditEvent
	for n > 0 {
		k := min(n, 7)
		evs := make([]*signet.AuditEvent, k)
		for i := range evs {
			evs[i] = &signet.AuditEvent{
				Time: time.Now(), Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
				ActorUser: "alice", Team: "ml", Store: "local", Bucket: "b",
				ObjectKey: fmt.Sprintf("runs/%d/weights-%s.bin", len(all)+i, strings.Repeat("x", 100)),
				UserAgent: "test\xff", // not UTF-8: the line carries it under "raw"
			}
		}
		if err := st.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
			t.Error(err) // not Fatal: called from goroutines too
			return all
		}
		all = append(all, evs...)
		n -= k
	}
	return all
}

// allEvents reads the whole log.
func allEvents(t *testing.T, st signet.Store) []*signet.AuditEvent {
	t.Helper()
	var out []*signet.AuditEvent
	f := signet.AuditFilter{Limit: 1000}
	for {
		var evs []*signet.AuditEvent
		if err := st.View(context.Background(), func(tx signet.Tx) (err error) { evs, err = tx.Audit(f); return err }); err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if len(evs) < f.Limit {
			return out
		}
		f.AfterID = evs[len(evs)-1].ID
	}
}

// running is a Set started in the background.
type running struct {
	set    *Set
	store  signet.Store // notifies the set after each commit
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, st signet.Store, dir string, reg prometheus.Registerer, cfgs ...Config) *running {
	t.Helper()
	return startWith(t, Options{Store: st, Dir: dir, Registerer: reg}, cfgs...)
}

func startWith(t *testing.T, opt Options, cfgs ...Config) *running {
	t.Helper()
	st := opt.Store
	opt.Getenv = func(k string) string { return map[string]string{"WEBHOOK_TOKEN": "s3cret-token"}[k] }
	set, err := New(cfgs, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{set: set, store: NotifyStore(st, set.Notify), cancel: cancel, done: make(chan struct{})}
	go func() { set.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readLines decodes JSON lines, up to the last newline: a sink may be
// writing the next line while the test reads.
func readLines(t *testing.T, b []byte) []*signet.AuditEvent {
	t.Helper()
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []*signet.AuditEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e signet.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, &e)
	}
	return out
}

// fileLines reads the sink's rotated files, oldest first, then the
// current one.
func fileLines(t *testing.T, path string) (evs []*signet.AuditEvent, files []string) {
	t.Helper()
	s := &fileSink{path: path}
	files = append(s.backups(), path)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		evs = append(evs, readLines(t, b)...)
	}
	return evs, files
}

// endsWithNewline fails the test if the file at path ends in a partial line.
func endsWithNewline(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s ends in a partial line", path)
	}
}

// sameLog reports how got differs from want: the same entries, each
// once, in order, with the same hashes and bytes.
func sameLog(got, want []*signet.AuditEvent) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Hash != w.Hash || g.PrevHash != w.PrevHash || g.UserAgent != w.UserAgent || g.ObjectKey != w.ObjectKey {
			return fmt.Errorf("entry %d: got seq %d hash %s, want seq %d hash %s", i, g.Seq, g.Hash, w.Seq, w.Hash)
		}
	}
	return nil
}

func TestFileSink(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "audit.jsonl")
	appendN(t, st, 100) // before the sink starts
	reg := prometheus.NewRegistry()
	r := start(t, st, filepath.Join(dir, "state"), reg,
		Config{Name: "f", Type: TypeFile, Path: path, MaxSize: 16 << 10, Batch: 30, PollInterval: time.Hour})
	appendN(t, r.store, 200) // while it runs; woken by notifications only
	want := allEvents(t, st)
	waitFor(t, "every entry in the file", func() bool {
		got, _ := fileLines(t, path)
		return len(got) >= len(want)
	})
	got, files := fileLines(t, path)
	if err := sameLog(got, want); err != nil {
		t.Error(err)
	}
	if len(files) < 3 {
		t.Errorf("%d files, want rotation into several", len(files))
	}
	endsWithNewline(t, path)
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 16<<10 {
			t.Errorf("%s has %d bytes, more than max_size", f, fi.Size())
		}
	}
	waitFor(t, "lag 0", func() bool { return testutil.ToFloat64(r.set.followers[0].lag) == 0 })
	if n := testutil.ToFloat64(r.set.followers[0].delivered); n != 300 {
		t.Errorf("delivered = %v, want 300", n)
	}

	t.Run("MaxBackups", func(t *testing.T) {
		path := filepath.Join(dir, "kept", "audit.jsonl")
		start(t, st, filepath.Join(dir, "state2"), nil,
			Config{Name: "g", Type: TypeFile, Path: path, MaxSize: 16 << 10, MaxBackups: 2, Batch: 30})
		waitFor(t, "the newest entry in the file", func() bool {
			got, _ := fileLines(t, path)
			return len(got) > 0 && got[len(got)-1].Seq == want[len(want)-1].Seq
		})
		got, files := fileLines(t, path)
		if len(files) != 3 {
			t.Errorf("files %v, want 2 backups and the current file", files)
		}
		if err := sameLog(got, want[len(want)-len(got):]); err != nil {
			t.Error(err)
		}
	})
}

// TestFileSinkCrash: a sink stopped after writing but before saving its
// cursor, with a line cut short in the file, resumes without losing or
// repeating an entry.
func TestFileSinkCrash(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	state := filepath.Join(dir, "state")
	cfg := Config{Name: "f", Type: TypeFile, Path: path, Batch: 25}
	appendN(t, st, 100)
	r := start(t, st, state, nil, cfg)
	waitFor(t, "100 entries", func() bool { got, _ := fileLines(t, path); return len(got) == 100 })
	r.stop()

	// The crash: the cursor is back at 40 (later saves lost) and a
	// write was cut in the middle of a line.
	want := allEvents(t, st)
	if err := writeCursor(filepath.Join(state, "f.cursor"), cursor{Seq: 40, Hash: want[39].Hash}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":101,"seq":101,"time":"2026-`)
	f.Close()

	appendN(t, st, 50)
	want = allEvents(t, st)
	start(t, st, state, nil, cfg)
	waitFor(t, "150 entries", func() bool { got, _ := fileLines(t, path); return len(got) >= 150 })
	got, _ := fileLines(t, path)
	if err := sameLog(got, want); err != nil {
		t.Error(err)
	}
	endsWithNewline(t, path)
}

// receiver is a real HTTP webhook receiver that can be down.
type receiver struct {
	*httptest.Server
	down     atomic.Bool
	mu       sync.Mutex
	lines    []*signet.AuditEvent
	requests int
	auth     map[string]bool
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{auth: map[string]bool{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if rc.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		rc.auth[r.Header.Get("Authorization")] = true
		rc.lines = append(rc.lines, readLines(t, body)...)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// deduped returns the entries received, repeats (by seq) dropped.
func (rc *receiver) deduped() (out []*signet.AuditEvent, repeats int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[int64]bool{}
	for _, e := range rc.lines {
		if seen[e.Seq] {
			repeats++
			continue
		}
		seen[e.Seq] = true
		out = append(out, e)
	}
	return out, repeats
}

func dirSize(t *testing.T, dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue // a spool file being written, not yet part of it
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func TestWebhookDownThenUp(t *testing.T) {
	st := openStore(t)
	rc := newReceiver(t)
	rc.down.Store(true)
	state := t.TempDir()
	const bound = 16 << 10
	reg := prometheus.NewRegistry()
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := startWith(t, Options{Store: st, Dir: state, Registerer: reg, Logger: logger}, Config{
		Name: "siem", Type: TypeWebhook, URL: rc.URL + "/ingest?token=in-url", Batch: 20, SpoolMaxSize: bound,
		Headers: map[string]string{"Authorization": "Bearer ${WEBHOOK_TOKEN}"}, Timeout: time.Second,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 40 * time.Millisecond, PollInterval: 50 * time.Millisecond,
	})
	appendN(t, r.store, 300) // ~90 KB of lines: far more than the spool holds
	want := allEvents(t, st)
	fl := r.set.followers[0]
	spool := filepath.Join(state, "siem.spool")

	// While the receiver is down, the spool fills to its bound and no
	// further; the sink reports its lag and failures.
	var peak int64
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, dirSize(t, spool))
		if fl.curSeq.Load() > 0 && testutil.ToFloat64(fl.failures) > 3 && peak > bound/2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 50 {
		peak = max(peak, dirSize(t, spool))
		time.Sleep(2 * time.Millisecond)
	}
	if peak > bound {
		t.Errorf("spool reached %d bytes, bound %d", peak, bound)
	}
	if peak < bound/2 {
		t.Errorf("spool peaked at %d bytes; it should have filled while the receiver was down", peak)
	}
	if c := fl.curSeq.Load(); c <= 0 || c >= int64(len(want)) {
		t.Errorf("cursor at %d while the receiver is down; want it stopped part way (spool full)", c)
	}
	if lag := testutil.ToFloat64(fl.lag); lag < float64(len(want))/2 {
		t.Errorf("lag = %v while down, want most of %d", lag, len(want))
	}

	rc.down.Store(false)
	appendN(t, r.store, 20)
	want = allEvents(t, st)
	waitFor(t, "every entry at the receiver", func() bool { got, _ := rc.deduped(); return len(got) >= len(want) })
	got, _ := rc.deduped()
	if err := sameLog(got, want); err != nil {
		t.Error(err)
	}
	if !rc.auth["Bearer s3cret-token"] || len(rc.auth) != 1 {
		t.Errorf("Authorization headers received: %v", rc.auth)
	}
	// Failures were logged, without the header's value or the URL's query.
	if l := string(logs.Bytes()); !strings.Contains(l, "audit webhook delivery failed") ||
		strings.Contains(l, "s3cret") || strings.Contains(l, "in-url") || strings.Contains(l, "/ingest") {
		t.Errorf("logs:\n%s", l)
	}
	waitFor(t, "lag 0", func() bool { return testutil.ToFloat64(fl.lag) == 0 })
	if n := dirSize(t, spool); n != 0 {
		t.Errorf("spool holds %d bytes after delivery", n)
	}
	if n := testutil.ToFloat64(fl.delivered); n != float64(len(want)) {
		t.Errorf("delivered = %v, want %d", n, len(want))
	}
}

// TestWebhookCrash: a sink that stops without saving its cursor, and with
// batches still in its spool, resumes and delivers everything (repeats
// allowed, dropped by seq).
func TestWebhookCrash(t *testing.T) {
	st := openStore(t)
	rc := newReceiver(t)
	state := t.TempDir()
	cfg := Config{Name: "w", Type: TypeWebhook, URL: rc.URL, Batch: 10,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	appendN(t, st, 60)
	r := start(t, st, state, nil, cfg)
	waitFor(t, "60 entries", func() bool { got, _ := rc.deduped(); return len(got) == 60 })
	rc.down.Store(true)
	appendN(t, r.store, 40) // spooled, not delivered
	waitFor(t, "spooled", func() bool { return r.set.followers[0].curSeq.Load() == 100 })
	r.stop()
	want := allEvents(t, st)
	// Cursor saves lost: back to 30.
	if err := writeCursor(filepath.Join(state, "w.cursor"), cursor{Seq: 30, Hash: want[29].Hash}); err != nil {
		t.Fatal(err)
	}
	rc.down.Store(false)
	appendN(t, st, 25)
	want = allEvents(t, st)
	start(t, st, state, nil, cfg)
	waitFor(t, "every entry", func() bool { got, _ := rc.deduped(); return len(got) >= len(want) })
	got, _ := rc.deduped()
	if err := sameLog(got, want); err != nil {
		t.Error(err)
	}
}

// TestPruned: a sink follows a log whose first entries were pruned. A
// cursor older than the first entry left continues with the first one
// left and warns of the entries it missed; a new sink starts at the first
// entry left ("beginning"), with nothing missed and no warning.
func TestPruned(t *testing.T) {
	// prunedLog is a log of 30 entries of which 1 to 12 were pruned.
	prunedLog := func(t *testing.T) (testStore, []*signet.AuditEvent) {
		st := openStore(t)
		appendN(t, st, 30)
		all := allEvents(t, st)
		db, err := sql.Open("sqlite", "file:"+st.path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("DELETE FROM audit_events WHERE id <= 12"); err != nil {
			t.Fatal(err)
		}
		left := allEvents(t, st)
		if len(left) != 18 || left[0].Seq != 13 {
			t.Fatalf("log after pruning starts at %d with %d entries", left[0].Seq, len(left))
		}
		return st, all
	}
	// run starts a file sink whose state is in state, waits for the 18
	// entries left, and returns the warnings that name missing entries.
	run := func(t *testing.T, st testStore, state string) (missing [][2]int64) {
		var logs syncbuf.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		path := filepath.Join(t.TempDir(), "a.jsonl")
		r := startWith(t, Options{Store: st, Dir: state, Logger: logger}, Config{Name: "f", Type: TypeFile, Path: path})
		waitFor(t, "18 entries", func() bool { got, _ := fileLines(t, path); return len(got) >= 18 })
		r.stop()
		got, _ := fileLines(t, path)
		if err := sameLog(got, allEvents(t, st)); err != nil {
			t.Error(err)
		}
		endsWithNewline(t, path)
		sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
		for sc.Scan() {
			var rec struct {
				Level string
				From  *int64 `json:"missing_from"`
				To    *int64 `json:"missing_to"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q: %v", sc.Text(), err)
			}
			if rec.From != nil || rec.To != nil {
				if rec.Level != slog.LevelWarn.String() || rec.From == nil || rec.To == nil {
					t.Errorf("log line %s: want a warning naming the range", sc.Text())
					continue
				}
				missing = append(missing, [2]int64{*rec.From, *rec.To})
			}
		}
		return missing
	}

	t.Run("Cursor", func(t *testing.T) {
		st, all := prunedLog(t)
		state := t.TempDir()
		if err := writeCursor(filepath.Join(state, "f.cursor"), cursor{Seq: 5, Hash: all[4].Hash}); err != nil {
			t.Fatal(err)
		}
		if got := run(t, st, state); len(got) != 1 || got[0] != [2]int64{6, 12} {
			t.Errorf("warnings of missing entries %v, want one for 6 to 12", got)
		}
	})
	t.Run("NewSink", func(t *testing.T) {
		st, _ := prunedLog(t)
		if got := run(t, st, t.TempDir()); len(got) != 0 {
			t.Errorf("a sink that never delivered warned of missing entries %v; want none", got)
		}
	})
}

func TestStartEnd(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 10)
	var out syncbuf.Buffer
	set, err := New([]Config{{Name: "o", Type: TypeStdout, Start: StartEnd}}, Options{Store: st, Dir: t.TempDir(), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the cursor at the end", func() bool { return set.followers[0].curSeq.Load() == 10 })
	appendN(t, NotifyStore(st, set.Notify), 5)
	waitFor(t, "5 lines", func() bool { return len(readLines(t, out.Bytes())) >= 5 })
	got := readLines(t, out.Bytes())
	if err := sameLog(got, allEvents(t, st)[10:]); err != nil {
		t.Error(err)
	}
}

func TestConfigErrors(t *testing.T) {
	env := func(k string) string { return map[string]string{"SET": "v"}[k] }
	for _, tc := range []struct {
		c    []Config
		want string
	}{
		{[]Config{{Type: TypeStdout}}, "name is required"},
		{[]Config{{Name: "a b", Type: TypeStdout}}, "name may hold only"},
		{[]Config{{Name: "a"}}, "type is required"},
		{[]Config{{Name: "a", Type: "kafka"}}, `unknown type "kafka"`},
		{[]Config{{Name: "a", Type: TypeFile}}, "path is required"},
		{[]Config{{Name: "a", Type: TypeFile, Path: "x", URL: "http://h"}}, `key "url" does not apply to a file sink`},
		{[]Config{{Name: "a", Type: TypeStdout, Path: "x"}}, `key "path" does not apply to a stdout sink`},
		{[]Config{{Name: "a", Type: TypeWebhook, URL: "http://h", MaxBackups: 3}}, `key "max_backups" does not apply`},
		{[]Config{{Name: "a", Type: TypeFile, Path: "x", MaxSize: 10}}, "max_size must be at least"},
		{[]Config{{Name: "a", Type: TypeWebhook}}, "url is required"},
		{[]Config{{Name: "a", Type: TypeWebhook, URL: "ftp://h/x"}}, "absolute http or https URL"},
		{[]Config{{Name: "a", Type: TypeWebhook, URL: "http://h", Headers: map[string]string{"X-Token": "${UNSET}"}}}, "environment variable UNSET, which is not set"},
		{[]Config{{Name: "a", Type: TypeWebhook, URL: "http://h", SpoolMaxSize: 100}}, "spool_max_size must be at least"},
		{[]Config{{Name: "a", Type: TypeWebhook, URL: "http://h", BackoffMin: time.Minute, BackoffMax: time.Second}}, "backoff_min"},
		{[]Config{{Name: "a", Type: TypeStdout, Batch: 5000}}, "batch must be between"},
		{[]Config{{Name: "a", Type: TypeStdout, Start: "now"}}, "start must be"},
		{[]Config{{Name: "a", Type: TypeStdout}, {Name: "a", Type: TypeStdout}}, "name used twice"},
	} {
		err := Validate(tc.c, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
	// A header value is expanded, and never appears in an error.
	c, err := Config{Name: "a", Type: TypeWebhook, URL: "http://h", Headers: map[string]string{"authorization": "Bearer ${SET}"}}.withDefaults(env)
	if err != nil || c.Headers["Authorization"] != "Bearer v" {
		t.Errorf("headers = %v, %v", c.Headers, err)
	}
	if err := Validate([]Config{{Name: "a", Type: TypeWebhook, URL: "http://h", Headers: map[string]string{"X": "Bearer ${SET}\n"}}}, env); err == nil || strings.Contains(err.Error(), "Bearer") {
		t.Errorf("line break in header: %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4096": 4096, "64MiB": 64 << 20, "100MB": 100e6, "1 GiB": 1 << 30, "5KB": 5000, "12B": 12} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "12 TB", "MiB", "99999999999999999999"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", in)
		}
	}
}

// TestStandby: a second process sharing the data directory stands by
// while the first runs a sink, and takes over, from its cursor, when it
// stops.
func TestStandby(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	state := filepath.Join(dir, "state")
	cfg := Config{Name: "f", Type: TypeFile, Path: path, PollInterval: 20 * time.Millisecond}
	appendN(t, st, 20)
	first := start(t, st, state, nil, cfg)
	waitFor(t, "20 entries", func() bool { got, _ := fileLines(t, path); return len(got) == 20 })
	second := start(t, st, state, nil, cfg)
	if second.set.followers[0].active.Load() {
		t.Fatal("second process opened the sink the first one runs")
	}
	appendN(t, first.store, 10)
	waitFor(t, "30 entries", func() bool { got, _ := fileLines(t, path); return len(got) == 30 })
	first.stop()
	appendN(t, st, 10)
	waitFor(t, "40 entries", func() bool { got, _ := fileLines(t, path); return len(got) >= 40 })
	if !second.set.followers[0].active.Load() {
		t.Error("second process did not take over")
	}
	time.Sleep(100 * time.Millisecond) // time for a repeat to show
	got, _ := fileLines(t, path)
	if err := sameLog(got, allEvents(t, st)); err != nil {
		t.Error(err)
	}
}

// TestWebhookRetryAfter: a receiver's Retry-After lengthens the wait
// before the next attempt, up to backoff_max.
func TestWebhookRetryAfter(t *testing.T) {
	st := openStore(t)
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	appendN(t, st, 3)
	start(t, st, t.TempDir(), nil, Config{Name: "w", Type: TypeWebhook, URL: srv.URL,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Second})
	waitFor(t, "a second attempt", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if d := times[1].Sub(times[0]); d < 900*time.Millisecond {
		t.Errorf("second attempt %v after the first; the receiver asked for 1s", d)
	}
}
