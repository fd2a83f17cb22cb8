package main

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// TestRevokeReplicas runs two replicas on one PostgreSQL database and one
// data directory (so they share the local store and its keys): a URL
// revoked through replica 1 is refused by replica 1 at once and by replica
// 2 within the propagation bound (RevocationMaxStale), which the test
// measures.
func TestRevokeReplicas(t *testing.T) {
	mains, token := mustRunReplicas(t, 2)
	a := cli{tb: t, addr: mains[0].URL(), token: token}
	a.must("team", "create", "ml")
	a.must("connector", "set", "ml", "--backend", "local")
	u := strings.TrimSpace(a.must("presign", "put", "ml", "f"))
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("data"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	onReplica2 := func(u string) string { return strings.Replace(u, mains[0].URL(), mains[1].URL(), 1) }

	const rounds = 5
	var worst, total time.Duration
	for i := range rounds {
		u1 := presignGet(t, a, "ml", "f")
		u2 := onReplica2(u1)
		wantWorks(t, "replica 1 before", u1)
		wantWorks(t, "replica 2 before", u2)
		// Revoke at a random phase of replica 2's reload ticker.
		time.Sleep(rand.N(RevocationRefresh))
		start := time.Now()
		a.must("revoke", "--team", "ml")
		wantRevoked(t, "replica 1 right after", u1)
		var took time.Duration
		for {
			st, code := fetch(t, u2)
			took = time.Since(start)
			if st == http.StatusForbidden && code == "revoked" {
				break
			}
			if st != http.StatusOK {
				t.Fatalf("round %d: replica 2 answered %d %s", i, st, code)
			}
			if took > RevocationMaxStale+time.Second {
				t.Fatalf("round %d: replica 2 still serves the revoked URL after %v (bound %v)", i, took, RevocationMaxStale)
			}
			time.Sleep(5 * time.Millisecond)
		}
		worst, total = max(worst, took), total+took
		// A URL issued after the revocation works on both.
		u3 := presignGet(t, a, "ml", "f")
		wantWorks(t, "replica 1 after", u3)
		wantWorks(t, "replica 2 after", onReplica2(u3))
	}
	t.Logf("revocation through replica 1 refused by replica 2 after %v on average, %v at worst (%d rounds; refresh %v, bound %v)",
		total/rounds, worst, rounds, RevocationRefresh, RevocationMaxStale)
}

// TestRevocationsFailClosed checks the in-memory check: without any
// revocation it answers without touching the store; once revocations
// cannot be reloaded for RevocationMaxStale it refuses (Unavailable),
// and a grant it cannot look up is refused too.
func TestRevocationsFailClosed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	db, err := openStore(t.Context(), cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told []string
	v := newRevocations(db, time.Now, func(r *signet.Revocation) {
		mu.Lock()
		told = append(told, r.ID)
		mu.Unlock()
	}, nil)
	v.maxStale = 200 * time.Millisecond
	if _, err := v.Revoked(t.Context(), "g"); signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("before the first load: %v, want unavailable", err)
	}
	if err := v.load(t.Context()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// No revocation: no lookup, so the closed store does not matter.
	if revoked, err := v.Revoked(t.Context(), "g"); revoked || err != nil {
		t.Errorf("no revocations: %v %v, want false nil", revoked, err)
	}
	// A revocation made here applies at once and is told once; the grant
	// cannot be looked up in the closed store, so the URL is refused.
	r := &signet.Revocation{ID: "r1", Team: "ml", IssuedBefore: time.Now(), CreatedAt: time.Now()}
	v.Add(r)
	v.Add(r)
	if _, err := v.Revoked(t.Context(), "g"); err == nil {
		t.Errorf("grant lookup in a closed store: no error")
	}
	if revoked, err := v.Revoked(t.Context(), ""); !revoked || err != nil {
		t.Errorf("URL without grant while a revocation is active: %v %v, want revoked", revoked, err)
	}
	mu.Lock()
	if len(told) != 1 || told[0] != "r1" {
		t.Errorf("onNew told %q, want r1 once", told)
	}
	mu.Unlock()
	if err := v.load(t.Context()); err == nil {
		t.Fatal("load from a closed store succeeded")
	}
	time.Sleep(v.maxStale + 50*time.Millisecond)
	if _, err := v.Revoked(t.Context(), "g"); signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("stale revocations: %v, want unavailable", err)
	}
}
