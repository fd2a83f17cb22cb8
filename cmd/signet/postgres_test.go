package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestPostgresReplicas starts two replicas at once against one empty
// PostgreSQL database and one data directory: exactly one bootstraps, its
// token is the one saved, and both serve it.
func TestPostgresReplicas(t *testing.T) {
	url := testpeer.PostgresURL(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	mains := make([]*Main, 2)
	outs := make([]*bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := range mains {
		cfg := DefaultConfig()
		cfg.Addr, cfg.DataDir, cfg.DB = "127.0.0.1:0", dir, url
		outs[i] = new(bytes.Buffer)
		mains[i] = &Main{Config: cfg, Dev: true, Stdout: outs[i]}
		wg.Go(func() { errs[i] = mains[i].Run(context.Background()) })
	}
	wg.Wait()
	for i, m := range mains {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		t.Cleanup(func() { m.Close() })
	}
	printed, keys := 0, 0
	for _, o := range outs {
		if strings.Contains(o.String(), "sgt_") {
			printed++
		}
		// Either replica may be the one that creates the checkpoint key;
		// exactly one must.
		if strings.Contains(o.String(), "created audit checkpoint key") {
			keys++
		}
	}
	if printed != 1 {
		t.Fatalf("%d replicas printed an admin token, want exactly 1", printed)
	}
	if keys != 1 {
		t.Errorf("%d replicas created an audit checkpoint key, want exactly 1", keys)
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	for _, o := range outs {
		if strings.Contains(o.String(), "sgt_") && !strings.Contains(o.String(), token) {
			t.Errorf("the saved token is not the printed one")
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPrefix+"admin-token*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary token files left behind: %v", leftovers)
	}
	// A change through one replica is seen by the other at once.
	a := cli{tb: t, addr: mains[0].URL(), token: token}
	b2 := cli{tb: t, addr: mains[1].URL(), token: token}
	a.must("team", "create", "shared")
	if out := b2.must("team", "list"); !strings.Contains(out, "shared") {
		t.Errorf("replica 2 does not see the team created through replica 1:\n%s", out)
	}
	k := strings.TrimSpace(a.must("key", "create", "admin"))
	b2.as(k).must("whoami")
	a.must("key", "revoke", keyID(t, k))
	if r := b2.as(k).run("whoami"); r.code != 1 {
		t.Errorf("key revoked on replica 1 still works on replica 2")
	}

	// migrate on a current schema changes nothing.
	r := cli{tb: t}.run("migrate", "--db", url)
	if r.code != 0 || !strings.Contains(r.stdout, "already at version") {
		t.Errorf("migrate: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// keyID returns the id part of an API key token.
func keyID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.SplitN(token, "_", 3)
	if len(parts) != 3 {
		t.Fatalf("malformed token")
	}
	return parts[1]
}
