package http_test

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricValue returns the value of the unlabelled metric name on /metrics.
func (e *env) metricValue(name string) float64 {
	e.t.Helper()
	a := e.do("GET", "/metrics", "", "")
	sc := bufio.NewScanner(bytes.NewReader(a.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	e.t.Fatalf("/metrics lacks %s", name)
	return 0
}

// TestCommitMetrics: /metrics counts the store's commits and the requests
// they carried, so an operator can see how many requests share a commit.
func TestCommitMetrics(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	commits0 := e.metricValue("signet_store_commits_total")
	updates0 := e.metricValue("signet_store_committed_updates_total")
	const n = 40
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Go(func() {
			status[i] = e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "a/b")).Status
		})
	}
	wg.Wait()
	for i, s := range status {
		if s != 200 {
			t.Fatalf("presign %d: %d", i, s)
		}
	}
	commits := e.metricValue("signet_store_commits_total") - commits0
	updates := e.metricValue("signet_store_committed_updates_total") - updates0
	// Each presign is one Update; a key's first use may add one more.
	if updates < n || updates > n+1 {
		t.Errorf("%v Updates committed for %d presigns", updates, n)
	}
	if commits < 1 || commits > updates {
		t.Errorf("%v commits for %v Updates", commits, updates)
	}
	t.Logf("%d concurrent presigns: %v Updates in %v commits", n, updates, commits)
}

// TestWALCheckpointMetrics: /metrics counts the SQLite store's WAL
// checkpoints, which run in the background after commits, and their
// failures, so that a WAL that stopped being copied shows.
func TestWALCheckpointMetrics(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	before := e.metricValue("signet_store_wal_checkpoints_total")
	for range 5 {
		if a := e.do("POST", "/v1/teams/ml/presign", tok, presignBody("download", "a/b")); a.Status != 200 {
			t.Fatalf("presign: %d", a.Status)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.metricValue("signet_store_wal_checkpoints_total") <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no WAL checkpoint counted within 5 s of the commits (%v before)", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.metricValue("signet_store_wal_checkpoint_failures_total"); n != 0 {
		t.Errorf("%v WAL checkpoints failed", n)
	}
	e.metricValue("signet_store_wal_writer_checkpoints_total") // exported, if rarely moved
}
