package http_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/postgres"
)

// TestAuditHeadRaceMetricsPostgres: /metrics of a server on PostgreSQL
// counts the batches its writer appended in one round trip at the head it
// knew, and those that found the head moved by another replica.
func TestAuditHeadRaceMetricsPostgres(t *testing.T) {
	ctx := context.Background()
	raw := testpeer.PostgresURL(t)
	if _, _, err := postgres.Migrate(ctx, raw); err != nil {
		t.Fatal(err)
	}
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open() // two replicas on one database
	srv := sighttp.NewServer(sighttp.Config{Store: a, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	metric := func(name string) int {
		t.Helper()
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return n
			}
		}
		t.Fatalf("/metrics lacks %s", name)
		return 0
	}
	appendOne := func(db *postgres.DB, id string) {
		t.Helper()
		err := db.Update(ctx, func(tx signet.Tx) error {
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, RequestID: id})
		})
		if err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
	}
	check := func(when string, known, moved int) {
		t.Helper()
		k, m := metric("signet_store_audit_known_head_appends_total"), metric("signet_store_audit_head_moved_total")
		if k != known || m != moved {
			t.Errorf("%s: known head appends %d, head moved %d; want %d and %d", when, k, m, known, moved)
		}
	}
	check("before any append", 0, 0)
	for i := range 3 {
		appendOne(a, fmt.Sprintf("a%d", i)) // the first reads the head; the next two know it
	}
	check("after 3 appends from one replica", 2, 0)
	appendOne(b, "b0")
	appendOne(a, "a3")
	check("after the other replica appended", 2, 1)
}
