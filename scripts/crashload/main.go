// Command crash runs presign load against signet, kills the server with
// SIGKILL at random moments, restarts it on the same data, and repeats;
// then it checks that every URL a client received has its audit entry
// (the entry whose grant id is the URL's grant parameter, for the same
// object key, allowed) and that `signet audit verify` passes. Run it
// through scripts/crash, which builds signet and, for PostgreSQL, creates
// and drops a database.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

var servingRE = regexp.MustCompile(`msg="signet serving" addr=(\S+)`)

type received struct {
	key, grant string
	trial      int
}

func main() {
	bin := flag.String("signet", "", "signet binary")
	dir := flag.String("data-dir", "", "data directory, kept across restarts")
	db := flag.String("db", "", "PostgreSQL URL (default: SQLite in the data directory)")
	trials := flag.Int("trials", 20, "how many times to kill -9 and restart")
	workers := flag.Int("workers", 16, "concurrent clients")
	minRun := flag.Duration("min", 100*time.Millisecond, "shortest time under load before a kill")
	maxRun := flag.Duration("max", 1500*time.Millisecond, "longest time under load before a kill")
	flag.Parse()
	if *bin == "" || *dir == "" || *trials < 1 || *maxRun < *minRun {
		fmt.Fprintln(os.Stderr, "crash: need -signet and -data-dir, -trials >= 1, -max >= -min")
		os.Exit(2)
	}
	if err := run(*bin, *dir, *db, *trials, *workers, *minRun, *maxRun); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		os.Exit(1)
	}
}

// server is one signet process.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

func start(bin, dir, db string, n int) (*server, error) {
	args := []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir}
	if db != "" {
		args = append(args, "--db", db)
	}
	cmd := exec.Command(bin, args...)
	log, err := os.Create(filepath.Join(filepath.Dir(dir), fmt.Sprintf("serve-%02d.log", n)))
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return &server{cmd: cmd, addr: "http://" + a, log: log}, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("signet did not start within 60 s; see %s", log.Name())
	}
}

func token(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	return strings.TrimSpace(string(b)), err
}

func run(bin, dir, db string, trials, workers int, minRun, maxRun time.Duration) error {
	var mu sync.Mutex
	var got []received
	begun := time.Now()
	for trial := 1; trial <= trials; trial++ {
		s, err := start(bin, dir, db, trial)
		if err != nil {
			return err
		}
		tok, err := token(dir)
		if err != nil {
			return err
		}
		c := sighttp.NewClient(s.addr, tok)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var n atomic.Int64
		for w := range workers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Sprintf("crash/t%02d/w%02d/%d", trial, w, i)
					resp, err := c.Presign(ctx, "default", &sighttp.PresignRequest{
						Operation: "upload", Objects: []sighttp.ObjectRequest{{Key: key}},
					})
					if err != nil {
						if ctx.Err() == nil && signet.ErrorCode(err) != signet.Unavailable {
							time.Sleep(10 * time.Millisecond) // the server is going away
						}
						continue
					}
					u, err := url.Parse(resp.Objects[0].URL)
					if err != nil || resp.Objects[0].URL == "" {
						continue
					}
					mu.Lock()
					got = append(got, received{key: key, grant: u.Query().Get("grant"), trial: trial})
					mu.Unlock()
					n.Add(1)
				}
			})
		}
		wait := minRun + rand.N(maxRun-minRun+1)
		time.Sleep(wait)
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		cancel()
		wg.Wait()
		s.log.Close()
		fmt.Printf("trial %2d: killed after %4d ms under load; %5d URLs received\n", trial, wait.Milliseconds(), n.Load())
	}

	// Restart once more and read the whole log back.
	s, err := start(bin, dir, db, trials+1)
	if err != nil {
		return err
	}
	defer func() { s.cmd.Process.Signal(syscall.SIGTERM); s.cmd.Wait(); s.log.Close() }()
	tok, err := token(dir)
	if err != nil {
		return err
	}
	c := sighttp.NewClient(s.addr, tok)
	byGrant := map[string]*signet.AuditEvent{}
	entries := 0
	q := sighttp.AuditQuery{Limit: 1000}
	for {
		page, err := c.Audit(context.Background(), q)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			entries++
			if e.GrantID != "" {
				byGrant[e.GrantID] = e
			}
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	missing := 0
	for _, r := range got {
		e := byGrant[r.grant]
		if r.grant == "" || e == nil || e.ObjectKey != r.key || e.Outcome != signet.OutcomeAllowed ||
			e.Action != signet.ActionPresignUpload {
			missing++
			if missing <= 10 {
				fmt.Fprintf(os.Stderr, "crash: URL for %s (grant %q, trial %d) was received but has no audit entry\n", r.key, r.grant, r.trial)
			}
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()

	target := filepath.Join(dir, "signet.db")
	if db != "" {
		target = db
	}
	out, verr := exec.Command(bin, "audit", "verify", "--db", target).CombinedOutput()
	verdict := "passed"
	if verr != nil {
		verdict = "FAILED: " + strings.TrimSpace(string(out))
	}
	sum, _ := json.Marshal(map[string]any{
		"trials": trials, "urls_received": len(got), "audit_entries": entries, "missing": missing,
		"verify": verr == nil, "seconds": time.Since(begun).Seconds(),
	})
	fmt.Printf("\n%d kill -9 trials; %d URLs received, %d audit entries, %d URLs without their entry; audit verify %s\n%s\n",
		trials, len(got), entries, missing, verdict, sum)
	fmt.Printf("verify: %s\n", strings.TrimSpace(string(out)))
	if missing > 0 || verr != nil {
		return fmt.Errorf("%d URLs without their audit entry; verify %s", missing, verdict)
	}
	return nil
}
