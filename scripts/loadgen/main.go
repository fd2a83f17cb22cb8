// Command loadgen sends presign requests to one or more signet replicas,
// the way clients behind a load balancer would: each request goes to the
// next replica, and a request that fails for want of a replica (connection
// refused or reset, 502/503) is retried on the next one. It records every
// URL it received, and with -check verifies afterwards that each one has
// its audit record. Used by scripts/replicas.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated replica base URLs")
	team := flag.String("team", "default", "team to presign for")
	workers := flag.Int("workers", 16, "concurrent clients")
	dur := flag.Duration("duration", 10*time.Second, "how long to send load")
	prefix := flag.String("prefix", "load", "object key prefix (make it unique per run)")
	out := flag.String("out", "", "append the keys of received URLs to this file")
	check := flag.String("check", "", "instead of load: verify every key in this file has an allowed audit record")
	flag.Parse()
	token := strings.TrimSpace(os.Getenv("SIGNET_TOKEN"))
	var clients []*sighttp.Client
	for _, a := range strings.Split(*addrs, ",") {
		clients = append(clients, sighttp.NewClient(a, token))
	}
	if len(clients) == 0 || token == "" {
		fmt.Fprintln(os.Stderr, "loadgen: need -addrs and SIGNET_TOKEN")
		os.Exit(2)
	}
	if *check != "" {
		os.Exit(verify(clients, *check))
	}
	os.Exit(load(clients, *team, *prefix, *out, *workers, *dur))
}

func load(clients []*sighttp.Client, team, prefix, out string, workers int, dur time.Duration) int {
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		defer f.Close()
	}
	var mu sync.Mutex
	var ok, retries, lost atomic.Int64
	var next atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s/w%d/%d", prefix, w, i)
				req := &sighttp.PresignRequest{Operation: "upload", Objects: []sighttp.ObjectRequest{{Key: key}}}
				done := false
				for attempt := 0; attempt < 3*len(clients) && !done; attempt++ {
					c := clients[next.Add(1)%uint64(len(clients))]
					rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
					resp, err := c.Presign(rctx, team, req)
					rcancel()
					if err == nil && resp.Objects[0].URL != "" {
						ok.Add(1)
						if f != nil {
							mu.Lock()
							fmt.Fprintln(f, key)
							mu.Unlock()
						}
						done = true
						break
					}
					if c := signet.ErrorCode(err); c != signet.Unavailable {
						fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", key, err)
						done = true
						lost.Add(1)
						break
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
				if !done {
					lost.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"replicas": len(clients), "requests": ok.Load(), "seconds": secs,
		"per_second": float64(ok.Load()) / secs, "retried": retries.Load(), "lost": lost.Load(),
	})
	if lost.Load() > 0 {
		return 1
	}
	return 0
}

// verify checks that every key in file has an allowed presign.upload
// audit record, reading the whole log through one replica.
func verify(clients []*sighttp.Client, file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	want := strings.Fields(string(b))
	seen := map[string]bool{}
	var c *sighttp.Client
	var err2 error
	q := sighttp.AuditQuery{Limit: 1000}
	for _, cand := range clients {
		if _, err2 = cand.Audit(context.Background(), sighttp.AuditQuery{Limit: 1}); err2 == nil {
			c = cand
			break
		}
	}
	if c == nil {
		fmt.Fprintln(os.Stderr, "loadgen: no replica answers:", err2)
		return 1
	}
	events := 0
	for {
		page, err := c.Audit(context.Background(), q)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		for _, e := range page.Events {
			events++
			if e.Action == signet.ActionPresignUpload && e.Outcome == signet.OutcomeAllowed {
				seen[e.ObjectKey] = true
			}
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	missing := 0
	for _, k := range want {
		if !seen[k] {
			missing++
			if missing <= 5 {
				fmt.Fprintf(os.Stderr, "loadgen: URL for %s was received but has no audit record\n", k)
			}
		}
	}
	fmt.Printf(`{"urls_received":%d,"audit_events":%d,"missing":%d}`+"\n", len(want), events, missing)
	if missing > 0 {
		return 1
	}
	return 0
}
