package azureblob

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/signetdev/signet"
)

// User delegation key tuning.
const (
	// keyLifetime is asked of Azure for each key: its limit is 7 days from
	// the current time, less a margin for the difference between clocks.
	keyLifetime = 7*24*time.Hour - 15*time.Minute
	// keyRenewAge: a key that cannot cover a requested expiry is renewed
	// when it is at least this old, so a burst of long URLs does not fetch
	// a key each.
	keyRenewAge = time.Hour
	// minKeyLifetime is the least a URL may live when its key cuts it
	// short; below it the key is renewed, and SignedURL answers Unavailable
	// when that fails.
	minKeyLifetime = time.Minute
)

// delegationKeys caches the user delegation key SAS tokens are signed
// with. Readers take the current key without locking; fetches are
// serialised.
type delegationKeys struct {
	svc *service.Client
	now func() time.Time

	mu  sync.Mutex // held while fetching
	cur atomic.Pointer[delegationKey]
}

// delegationKey is one user delegation key and its validity.
type delegationKey struct {
	cred    *sas.UserDelegationCredential
	expiry  time.Time
	fetched time.Time
}

// usable reports whether k may sign a URL issued at now that should live
// until want (perhaps shortened to k's expiry).
func (k *delegationKey) usable(now, want, clock time.Time) bool {
	if k == nil || k.expiry.Sub(now) < minKeyLifetime {
		return false
	}
	return !k.expiry.Before(want) || clock.Sub(k.fetched) < keyRenewAge
}

// get returns a key to sign a URL issued at now that should live until
// want, fetching a new one when the cached key cannot serve. When a fetch
// fails but the cached key still lives minKeyLifetime, that key is used
// (and the URL shortened to it).
func (d *delegationKeys) get(ctx context.Context, now, want time.Time) (*delegationKey, error) {
	if k := d.cur.Load(); k.usable(now, want, d.now()) {
		return k, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cur.Load()
	if old.usable(now, want, d.now()) {
		return old, nil
	}
	k, err := d.fetch(ctx)
	if err != nil {
		if old != nil && old.expiry.Sub(now) >= minKeyLifetime {
			return old, nil
		}
		return nil, err
	}
	if k.expiry.Sub(now) < minKeyLifetime {
		return nil, signet.E("azureblob.SignedURL", signet.Unavailable, "the user delegation key Azure issued expires too soon", nil)
	}
	d.cur.Store(k)
	return k, nil
}

// fetch asks Azure for a new user delegation key valid from ClockSkew ago
// for keyLifetime.
func (d *delegationKeys) fetch(ctx context.Context) (*delegationKey, error) {
	const op = "azureblob.SignedURL"
	clock := d.now().UTC().Truncate(time.Second)
	start, expiry := clock.Add(-ClockSkew), clock.Add(keyLifetime)
	cred, err := d.svc.GetUserDelegationCredential(ctx, service.KeyInfo{
		Start:  to.Ptr(start.Format(sas.TimeFormat)),
		Expiry: to.Ptr(expiry.Format(sas.TimeFormat)),
	}, nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			return nil, storeError(op, "cannot get a user delegation key from Azure", err)
		}
		// No answer from Azure, or no token from Entra ID.
		return nil, signet.E(op, signet.Unavailable, "cannot obtain Entra ID credentials for a user delegation key", err)
	}
	return &delegationKey{cred: cred, expiry: expiry, fetched: clock}, nil
}
