package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// buildSignet compiles the signet binary once per test run.
var buildSignet = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "signet-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "signet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

var servingRE = regexp.MustCompile(`msg="signet serving" addr=(\S+)`)

// startProcess runs `signet serve` as a separate process and returns it
// with its address once it serves.
func startProcess(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("signet did not start within 30 s")
	}
	return nil, ""
}

// TestCrashKeepsAudit kills the server with SIGKILL while clients are
// getting URLs, restarts it, and checks that every URL a client received
// has its audit record.
func TestCrashKeepsAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	bin, err := buildSignet()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	received := map[string]bool{}
	var mu sync.Mutex
	for round := 0; round < 3; round++ {
		proc, addr := startProcess(t, bin, dataDir)
		token, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
		if err != nil {
			t.Fatal(err)
		}
		c := sighttp.NewClient(addr, strings.TrimSpace(string(token)))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Sprintf("crash/r%d/g%d/%d", round, g, i)
					resp, err := c.Presign(ctx, "default", &sighttp.PresignRequest{
						Operation: "upload", Objects: []sighttp.ObjectRequest{{Key: key}},
					})
					if err != nil {
						return // the server died
					}
					if resp.Objects[0].URL != "" {
						mu.Lock()
						received[key] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
		cancel()
		wg.Wait()
	}
	if len(received) < 50 {
		t.Fatalf("only %d URLs issued before the kills; the test proves nothing", len(received))
	}

	_, addr := startProcess(t, bin, dataDir)
	token, _ := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	c := sighttp.NewClient(addr, strings.TrimSpace(string(token)))
	recorded := map[string]bool{}
	q := sighttp.AuditQuery{Limit: 1000}
	for {
		page, err := c.Audit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.Action == signet.ActionPresignUpload && e.Outcome == signet.OutcomeAllowed {
				recorded[e.ObjectKey] = true
			}
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	missing := 0
	for k := range received {
		if !recorded[k] {
			missing++
			if missing <= 5 {
				t.Errorf("URL for %s was answered but has no audit record", k)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered URLs have no audit record", missing, len(received))
	}
	// The audit chain survives the kills: it verifies end to end.
	if out, err := exec.Command(bin, "audit", "verify", "--db", filepath.Join(dataDir, "signet.db")).CombinedOutput(); err != nil {
		t.Errorf("audit verify after kill -9: %v\n%s", err, out)
	}
	t.Logf("%d URLs answered across 3 kill -9 rounds; all %d recorded", len(received), len(received)-missing)
}
