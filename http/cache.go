package http

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/signetdev/signet"
)

// The authorisation cache. Authenticating a key and authorising a presign
// read an API key, its user, the user's memberships, the team, its
// connector and sealed credential, and then unseal the credential: done
// per request, that was about two fifths of a presign's CPU. The
// server keeps them in memory instead, in a generation tagged with the
// store's change sequence, a number that every change to any of those rows
// moves forward in the change's own transaction (database triggers,
// migration 0009; a key's last use does not count).
//
// Every request reads the change sequence first: one indexed row, a
// prepared read on SQLite, one round trip on PostgreSQL. When it differs
// from the generation's, the generation is dropped and a new, empty one
// starts; so a change committed anywhere (this process, another process on
// the same SQLite file, another replica on the same PostgreSQL database)
// applies from the next request that starts after its commit, exactly as
// when every request read the rows themselves. Entries are loaded after
// the request read the sequence, so they are never older than the
// generation they go into.
//
// Stores without a change sequence (and any failure to read it) get the
// uncached path: every request reads the rows, as before.

// changeSeqStore is a store that keeps a change sequence (sqlite.DB,
// postgres.DB).
type changeSeqStore interface {
	ChangeSeq(ctx context.Context) (int64, error)
}

// maxCacheEntries bounds each map of a generation; past it, lookups are
// served from the store without being cached. Only rows that exist are
// cached, so unknown key ids or team names cannot fill it.
const maxCacheEntries = 100_000

type authCache struct {
	once sync.Once
	src  changeSeqStore // nil: no cache
	cur  atomic.Pointer[cacheGen]

	// Reads of the change sequence are shared (readSeq).
	mu      sync.Mutex
	reading bool             // a request is reading for the others
	waiting []chan seqResult // requests waiting for the next read
}

type seqResult struct {
	seq  int64
	err  error
	lead bool // the receiver reads next, for everyone waiting
}

// cacheGen holds what was read at one value of the change sequence.
type cacheGen struct {
	seq int64

	mu      sync.RWMutex
	keys    map[string]*keyEntry              // API key id
	members map[string]map[string]signet.Role // user → team → role
	teams   map[string]*teamEntry             // team name
}

// keyEntry is a key with its user. lastUsed (Unix ns) is when this process
// last recorded the key's use, so that it writes it at most once per
// touchInterval.
type keyEntry struct {
	key      *signet.APIKey
	user     *signet.User
	lastUsed atomic.Int64
}

// teamEntry is a team with its connector (as the driver sees it, see
// withTeamNetworks) and the connector's unsealed credential. The driver
// itself is not kept here: OpenBackend has its own cache, which the
// server's revocation handling empties so that the next URL is signed with
// a new session (an S3 role assumed again), and a driver held here would
// outlive that.
type teamEntry struct {
	team   *signet.Team
	conn   *signet.Connector
	secret map[string]string
	// secretErr is why the credential could not be unsealed; such
	// entries are not cached.
	secretErr error
}

// generation returns the generation current for a request starting now,
// or nil when there is no cache (the store keeps no change sequence or
// cannot be read; the uncached path then meets the same failure).
func (s *Server) generation(ctx context.Context) *cacheGen {
	c := &s.cache
	c.once.Do(func() { c.src, _ = s.store.(changeSeqStore) })
	if c.src == nil {
		return nil
	}
	seq, err := c.readSeq(ctx)
	if err != nil {
		return nil
	}
	for {
		g := c.cur.Load()
		if g != nil && g.seq == seq {
			return g
		}
		// A different number, higher or (a restored database) lower:
		// nothing cached may be used.
		ng := &cacheGen{seq: seq}
		if c.cur.CompareAndSwap(g, ng) {
			return ng
		}
	}
}

// readSeq returns the change sequence as read after the call began.
// Concurrent requests share reads, as concurrent Updates share commits: a
// request waits for the next read to start, not for one already under way
// (which may have missed a change committed before the request arrived),
// and one request reads for every request waiting at that moment. On
// PostgreSQL a read is a round trip, and this saves most of them under
// load.
func (c *authCache) readSeq(ctx context.Context) (int64, error) {
	me := make(chan seqResult, 1)
	c.mu.Lock()
	c.waiting = append(c.waiting, me)
	lead := !c.reading
	c.reading = true
	c.mu.Unlock()
	if !lead {
		r := <-me
		if !r.lead {
			return r.seq, r.err
		}
	}
	// One caller going away must not fail the read the others wait for;
	// the stores bound the read themselves.
	ctx = context.WithoutCancel(ctx)
	// The read covers every request waiting now, this one included: it
	// was waiting before it was told to lead.
	c.mu.Lock()
	batch := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	seq, err := int64(0), errors.New("reading the change sequence failed")
	defer func() {
		// Deferred, so that a panic in the store does not leave the
		// others waiting for ever.
		for _, w := range batch {
			if w != me {
				w <- seqResult{seq: seq, err: err}
			}
		}
		c.mu.Lock()
		if len(c.waiting) == 0 {
			c.reading = false
		} else {
			// Hand the next read to a waiting request.
			c.waiting[0] <- seqResult{lead: true}
		}
		c.mu.Unlock()
	}()
	seq, err = c.src.ChangeSeq(ctx)
	return seq, err
}

func (g *cacheGen) key(id string) *keyEntry {
	if g == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.keys[id]
}

func (g *cacheGen) putKey(id string, e *keyEntry) *keyEntry {
	if g == nil {
		return e
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.keys[id]; ok {
		return prev
	}
	put(&g.keys, id, e)
	return e
}

// put sets m[k] = v, making m if needed, unless m already holds
// maxCacheEntries. The caller holds the generation's lock.
func put[V any](m *map[string]V, k string, v V) {
	if len(*m) >= maxCacheEntries {
		return
	}
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[k] = v
}

// roles returns the user's role in each of their teams, and whether the
// generation knows them.
func (g *cacheGen) roles(user string) (map[string]signet.Role, bool) {
	if g == nil {
		return nil, false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	m, ok := g.members[user]
	return m, ok
}

func (g *cacheGen) putRoles(user string, ms []*signet.Member) {
	if g == nil {
		return
	}
	m := make(map[string]signet.Role, len(ms))
	for _, mb := range ms {
		m[mb.Team] = mb.Role
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	put(&g.members, user, m)
}

func (g *cacheGen) team(name string) *teamEntry {
	if g == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.teams[name]
}

func (g *cacheGen) putTeam(name string, e *teamEntry) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	put(&g.teams, name, e)
}

// genOf returns the generation the request was authenticated in.
func genOf(r *http.Request) *cacheGen {
	g, _ := r.Context().Value(ctxGen).(*cacheGen)
	return g
}

// ctxGen is the context key of the request's cache generation.
type ctxGenKey struct{}

var ctxGen ctxGenKey

// lookupKey returns the key with id and its user, from the generation or
// the store. NotFound when the key or its user does not exist.
func (s *Server) lookupKey(ctx context.Context, g *cacheGen, id string) (*keyEntry, error) {
	if e := g.key(id); e != nil {
		return e, nil
	}
	e := &keyEntry{}
	err := s.store.View(ctx, func(tx signet.Tx) error {
		k, err := tx.APIKey(id)
		if err != nil {
			return err
		}
		u, err := tx.User(k.User)
		if err != nil {
			return err
		}
		e.key, e.user = k, u
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.key.LastUsedAt != nil {
		e.lastUsed.Store(e.key.LastUsedAt.UnixNano())
	}
	return g.putKey(id, e), nil
}

// teamAccess authorises a for p in team and returns the team, its
// connector and its credential, from the generation or the store.
// Non-admins get PermissionDenied for teams that do not exist (teamRole).
func (s *Server) teamAccess(ctx context.Context, g *cacheGen, a signet.Actor, team string, p signet.Permission) (*teamEntry, error) {
	if te := g.team(team); te != nil {
		if roles, ok := g.roles(a.User); ok {
			if err := signet.Authorize(a, team, roles[team], p); err != nil {
				return nil, err
			}
			return te, nil
		}
	}
	te := &teamEntry{}
	var cred *signet.Credential
	var ms []*signet.Member
	err := s.store.View(ctx, func(tx signet.Tx) (err error) {
		if te.team, _, ms, err = teamMemberships(tx, a, team, p); err != nil {
			return err
		}
		te.conn, cred, err = connector(tx, team)
		return err
	})
	if err != nil {
		return nil, err
	}
	g.putRoles(a.User, ms)
	if te.secret, te.secretErr = s.openSecret(cred); te.secretErr == nil {
		g.putTeam(team, te)
	}
	return te, nil
}
