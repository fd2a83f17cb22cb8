package azureblob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/signetdev/signet"
)

// Stored access policies (Config.Revocable).
//
// A revocable backend signs every SAS against a stored access policy of
// its container (si=) instead of giving the permissions in the SAS (sp=).
// The policy (a signed identifier of the container's ACL) holds only the
// permissions; the SAS keeps its own start, expiry, IP range and protocol,
// all signed. There is one policy per permission set the backend uses:
// read (r) for GET and HEAD, create and write (cw) for a single PUT, and
// write (w) for a block. RotateAccessPolicies replaces the three with new
// identifiers, which withdraws every SAS that names an old one; the
// container's other identifiers are kept.
const (
	// PolicyPrefix starts the identifiers signet makes; the container's
	// other identifiers are never changed.
	PolicyPrefix = "signet-"
	// MaxSignedIdentifiers is Azure's limit of stored access policies per
	// container.
	MaxSignedIdentifiers = 5
	// PolicyMaxAge is how long a backend signs with the identifiers it
	// read before reading the container's ACL again, so a replica that
	// missed a rotation (made through another replica or by hand) stops
	// signing with withdrawn identifiers within it. The server also drops
	// its revocable drivers on every revocation it sees.
	PolicyMaxAge = time.Minute
)

// policyPerms are the permission sets SignedURL uses.
var policyPerms = [...]string{"r", "cw", "w"}

// policies caches the identifiers SAS tokens name. Readers take the
// current set without locking; loads and rotations are serialised.
type policies struct {
	client *container.Client
	now    func() time.Time

	mu  sync.Mutex
	cur atomic.Pointer[policySet]
}

// policySet is the identifier of each permission set, as read at loaded.
type policySet struct {
	ids    map[string]string // permissions -> identifier
	loaded time.Time
}

// get returns the identifiers to sign with, reading the container's ACL
// (and creating signet's policies when missing) when none were read yet
// or they are older than PolicyMaxAge. When a re-read fails, the cached
// set is used: a URL naming a withdrawn identifier only fails.
func (p *policies) get(ctx context.Context) (*policySet, error) {
	if s := p.cur.Load(); s != nil && p.now().Sub(s.loaded) < PolicyMaxAge {
		return s, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.cur.Load()
	if old != nil && p.now().Sub(old.loaded) < PolicyMaxAge {
		return old, nil
	}
	s, err := p.load(ctx, false)
	if err != nil {
		if old != nil {
			return old, nil
		}
		return nil, err
	}
	return s, nil
}

// expire makes the next get read the container's ACL again; until that
// succeeds the identifiers known are kept.
func (p *policies) expire() {
	if s := p.cur.Load(); s != nil {
		p.cur.CompareAndSwap(s, &policySet{ids: s.ids})
	}
}

// rotate replaces signet's policies with new identifiers.
func (p *policies) rotate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.load(ctx, true)
	return err
}

// load reads the container's ACL and installs signet's identifiers. With
// rotate, or when one of signet's policies is missing, it writes the ACL:
// the other identifiers as they were, signet's as found (or all new with
// rotate), and the container's public access level unchanged. After a
// write it reads the ACL again and adopts what it finds, so when two
// replicas write at once both end up signing with the identifiers that
// stayed. p.mu must be held.
func (p *policies) load(ctx context.Context, rotate bool) (*policySet, error) {
	const op = "azureblob.AccessPolicies"
	resp, err := p.client.GetAccessPolicy(ctx, nil)
	if err != nil {
		return nil, storeError(op, "cannot read the container's stored access policies", err)
	}
	var others []*container.SignedIdentifier
	ids := map[string]string{}
	for _, si := range resp.SignedIdentifiers {
		if si == nil || si.ID == nil {
			continue
		}
		if !strings.HasPrefix(*si.ID, PolicyPrefix) {
			others = append(others, si)
			continue
		}
		if perm, ok := ownPolicy(si); ok && ids[perm] == "" {
			ids[perm] = *si.ID
		}
	}
	complete := len(ids) == len(policyPerms)
	if complete && !rotate {
		s := &policySet{ids: ids, loaded: p.now()}
		p.cur.Store(s)
		return s, nil
	}
	if len(others)+len(policyPerms) > MaxSignedIdentifiers {
		return nil, signet.E(op, signet.Conflict,
			"the container has stored access policies not made by signet; signet needs 3 of the 5 a container may have: remove some, or set the connector without revocable", nil)
	}
	acl := append([]*container.SignedIdentifier(nil), others...)
	for _, perm := range policyPerms {
		id := ids[perm]
		if rotate || id == "" {
			if id, err = newPolicyID(perm); err != nil {
				return nil, signet.E(op, signet.Internal, "", err)
			}
		}
		acl = append(acl, &container.SignedIdentifier{ID: &id, AccessPolicy: &container.AccessPolicy{Permission: &perm}})
	}
	if _, err := p.client.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{
		Access: resp.BlobPublicAccess, ContainerACL: acl,
	}); err != nil {
		return nil, storeError(op, "cannot write the container's stored access policies", err)
	}
	// Read back: another replica may have written at the same time.
	if resp, err = p.client.GetAccessPolicy(ctx, nil); err != nil {
		return nil, storeError(op, "cannot read the container's stored access policies", err)
	}
	ids = map[string]string{}
	for _, si := range resp.SignedIdentifiers {
		if si != nil && si.ID != nil && strings.HasPrefix(*si.ID, PolicyPrefix) {
			if perm, ok := ownPolicy(si); ok && ids[perm] == "" {
				ids[perm] = *si.ID
			}
		}
	}
	if len(ids) != len(policyPerms) {
		return nil, signet.E(op, signet.Unavailable, "the container's stored access policies changed while signet wrote them; try again", nil)
	}
	s := &policySet{ids: ids, loaded: p.now()}
	p.cur.Store(s)
	return s, nil
}

// ownPolicy returns the permissions of one of signet's policies: an
// identifier "signet-<perm>-..." whose policy gives exactly those
// permissions and no start or expiry (the SAS carries them).
func ownPolicy(si *container.SignedIdentifier) (string, bool) {
	ap := si.AccessPolicy
	if ap == nil || ap.Permission == nil || ap.Start != nil || ap.Expiry != nil {
		return "", false
	}
	for _, perm := range policyPerms {
		if *ap.Permission == perm && strings.HasPrefix(*si.ID, PolicyPrefix+perm+"-") {
			return perm, true
		}
	}
	return "", false
}

// newPolicyID returns a new identifier for perm: "signet-<perm>-" and 16
// random hex digits (Azure allows 64 characters).
func newPolicyID(perm string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return PolicyPrefix + perm + "-" + hex.EncodeToString(b[:]), nil
}

// Revocable reports whether the backend signs against stored access
// policies that RotateAccessPolicies can replace (Config.Revocable).
func (b *Backend) Revocable() bool { return b.pol != nil }

// ExpireAccessPolicies makes the next SignedURL read the container's
// stored access policies again, not waiting for PolicyMaxAge: the server
// calls it on every replica when it sees a revocation, since another
// replica may have rotated them. It makes no network call.
func (b *Backend) ExpireAccessPolicies() {
	if b.pol != nil {
		b.pol.expire()
	}
}

// RotateAccessPolicies withdraws every SAS the backend (or any backend for
// the same container) signed before it: it replaces signet's stored
// access policies on the container with new identifiers, keeping the
// container's other identifiers and public access level, and signs with
// the new ones from then on. Azure may take up to 30 seconds to apply the
// change, during which old URLs may still work and new ones may be
// refused; Azurite applies it at once.
//
// Errors are *signet.Error values: Unimplemented when the backend is not
// revocable, Conflict when the container holds too many other policies,
// and the store's errors as for Diagnose.
func (b *Backend) RotateAccessPolicies(ctx context.Context) error {
	if b.pol == nil {
		return signet.E("azureblob.RotateAccessPolicies", signet.Unimplemented,
			"the connector does not sign against stored access policies (option revocable); user delegation SAS cannot", nil)
	}
	return b.pol.rotate(ctx)
}
