package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/azureblob"
)

// Revocation propagation. Every replica reloads the revocations that can
// still match an unexpired URL every RevocationRefresh; a revocation made
// through another replica therefore takes effect here within one refresh
// plus the time of the query. If reloading fails for RevocationMaxStale,
// the local store refuses every URL until it succeeds again (fail
// closed), so a revocation is never ignored for longer than that.
const (
	RevocationRefresh  = time.Second
	RevocationMaxStale = 3 * time.Second
	// maxGrantCache bounds the grants kept in memory; the cache is emptied
	// when it is full.
	maxGrantCache = 1 << 16
)

// revocationState is one loaded view of the revocations.
type revocationState struct {
	set      *signet.RevocationSet
	loadedAt time.Time
}

// revocations answers the local store's per-request question "was this
// grant revoked?" from memory: the active revocations, indexed so that a
// grant no revocation names is cleared in constant time, and the grants
// already looked up in the audit log. It also tells onNew of each
// revocation it has not seen before, so cached signing sessions are
// dropped on every replica.
type revocations struct {
	store    signet.Store
	now      func() time.Time // the server's clock, which dates revocations
	refresh  time.Duration
	maxStale time.Duration
	onNew    func(*signet.Revocation)
	log      *slog.Logger

	state atomic.Pointer[revocationState]

	mu       sync.Mutex
	loaded   []*signet.Revocation          // as the last successful load returned them
	loadedAt time.Time                     // when that load started
	seen     map[string]bool               // ids already given to onNew
	local    map[string]*signet.Revocation // made here, not yet seen in a load
	grants   map[string]*signet.Grant
}

func newRevocations(store signet.Store, now func() time.Time, onNew func(*signet.Revocation), log *slog.Logger) *revocations {
	return &revocations{
		store: store, now: now, refresh: RevocationRefresh, maxStale: RevocationMaxStale, onNew: onNew, log: log,
		seen: map[string]bool{}, local: map[string]*signet.Revocation{}, grants: map[string]*signet.Grant{},
	}
}

// errStale refuses checks while the revocations cannot be reloaded.
var errStale = signet.E("revocations", signet.Unavailable, "the revocation list could not be reloaded recently", nil)

// Revoked implements fileblob.RevokedFunc. It errs (so the URL is refused)
// when the revocations are stale or the grant cannot be looked up. With
// no active revocation it answers without any lookup; otherwise a grant
// is looked up in the audit log once and then kept. A URL without a grant
// id, or whose grant is not on record, is treated as revoked while any
// revocation is active, since no revocation can be ruled out for it.
func (v *revocations) Revoked(ctx context.Context, grant string) (bool, error) {
	st := v.state.Load()
	if st == nil || time.Since(st.loadedAt) > v.maxStale {
		return false, errStale
	}
	if st.set.Len() == 0 {
		return false, nil
	}
	if grant == "" {
		return true, nil
	}
	g, err := v.grant(ctx, grant)
	if signet.ErrorCode(err) == signet.NotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return st.set.Match(g) != nil, nil
}

func (v *revocations) grant(ctx context.Context, id string) (*signet.Grant, error) {
	v.mu.Lock()
	g, ok := v.grants[id]
	v.mu.Unlock()
	if ok {
		return g, nil
	}
	err := v.store.View(ctx, func(tx signet.Tx) (err error) {
		g, err = tx.Grant(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.grants) >= maxGrantCache {
		clear(v.grants)
	}
	v.grants[id] = g
	v.mu.Unlock()
	return g, nil
}

// Add applies r at once, before the next reload: the server calls it when
// it has stored r.
func (v *revocations) Add(r *signet.Revocation) {
	v.mu.Lock()
	v.local[r.ID] = r
	fresh := v.publishLocked()
	v.mu.Unlock()
	v.tell(fresh)
}

// publishLocked installs the loaded revocations together with those added
// here that no load has returned yet, and returns those not seen before.
// Staleness counts from the last successful load, not from local
// additions. v.mu must be held.
func (v *revocations) publishLocked() []*signet.Revocation {
	rs := make([]*signet.Revocation, 0, len(v.loaded)+len(v.local))
	rs = append(rs, v.loaded...)
	for _, r := range v.local {
		rs = append(rs, r)
	}
	var fresh []*signet.Revocation
	for _, r := range rs {
		if !v.seen[r.ID] {
			v.seen[r.ID] = true
			fresh = append(fresh, r)
		}
	}
	v.state.Store(&revocationState{set: signet.NewRevocationSet(rs), loadedAt: v.loadedAt})
	return fresh
}

// tell gives onNew the revocations it has not had.
func (v *revocations) tell(fresh []*signet.Revocation) {
	if v.onNew != nil {
		for _, r := range fresh {
			v.onNew(r)
		}
	}
}

// load reloads the revocations that can still match an unexpired URL:
// those whose IssuedBefore is less than signet.MaxExpiry (plus a margin
// for clock skew) ago.
func (v *revocations) load(ctx context.Context) error {
	start := time.Now() // staleness is measured in real time, whatever v.now says
	since := v.now().Add(-signet.MaxExpiry - time.Hour)
	var rs []*signet.Revocation
	err := v.store.View(ctx, func(tx signet.Tx) (err error) {
		rs, err = tx.Revocations(since)
		return err
	})
	if err != nil {
		return err
	}
	// Staleness counts from the start of the query: a revocation committed
	// before it is in rs.
	v.mu.Lock()
	v.loaded, v.loadedAt = rs, start
	for _, r := range rs {
		delete(v.local, r.ID)
	}
	fresh := v.publishLocked()
	v.mu.Unlock()
	v.tell(fresh)
	return nil
}

// run reloads every refresh interval until ctx is done.
func (v *revocations) run(ctx context.Context) {
	t := time.NewTicker(v.refresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, v.maxStale)
		err := v.load(lctx)
		cancel()
		switch {
		case err != nil && !errors.Is(ctx.Err(), context.Canceled) && !failing:
			failing = true
			v.log.Error("reloading revocations; the local store refuses URLs until it works again", "err", err)
		case err == nil && failing:
			failing = false
			v.log.Info("revocations reloaded again")
		}
	}
}

// drop forgets the cached drivers of team (of every team when team is
// empty), so the next URL is signed with a new session: an S3 role is
// assumed again, Azure and GCS credentials are fetched again. Every
// revocable Azure driver, whatever its team, is also told to read its
// container's stored access policies again before it next signs: the
// revocation may have rotated them through another replica, or through
// another team on the same container. That reaches the driver wherever
// it is held (the server keeps opened buckets too), while dropping it
// from this cache would not. A driver that signs with withdrawn
// policies only makes URLs that fail, and reads the policies again
// within azureblob.PolicyMaxAge anyway.
func (b *backends) drop(team string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, be := range b.cache {
		if az, ok := be.(*azureblob.Backend); ok {
			az.ExpireAccessPolicies()
		}
		if team == "" || len(k) > len(team) && k[:len(team)+1] == team+"\x00" {
			delete(b.cache, k)
		}
	}
}
