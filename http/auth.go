package http

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/signetdev/signet"
)

// touchInterval bounds how often a key's last-used time is written, so that
// authentication does not add a durable write to every request.
const touchInterval = time.Minute

// dummyHash is compared against when a key id is unknown, so the time taken
// does not tell whether an id exists.
var dummyHash = make([]byte, 32)

// errUnauthenticated is the one answer for every bad credential.
var errUnauthenticated = signet.Errorf(signet.Unauthenticated, "missing or invalid API key")

// authenticate admits requests that carry a valid, unrevoked API key in the
// Authorization header. Credentials anywhere else are ignored.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The cache generation this request sees: read before anything
		// else, so every later lookup is at least as new (cache.go).
		g := s.generation(r.Context())
		a, err := s.actor(r.Context(), g, r.Header.Get("Authorization"))
		if err != nil {
			ev := s.event(r, signet.ActionAuthenticate)
			if a.KeyID != "" {
				ev.Target = a.KeyID
			}
			s.deny(w, r, ev, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxActor, a)
		ctx = context.WithValue(ctx, ctxClientIP, s.ips.ClientIP(r))
		if g != nil {
			ctx = context.WithValue(ctx, ctxGen, g)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// actor resolves an Authorization header to an Actor. On failure it returns
// errUnauthenticated (or Unavailable when the store is down) and, when the
// token was well formed, an Actor holding only the key id for the record.
func (s *Server) actor(ctx context.Context, g *cacheGen, header string) (signet.Actor, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return signet.Actor{}, errUnauthenticated
	}
	id, hash, ok := signet.ParseAPIKeyToken(strings.TrimSpace(token))
	if !ok {
		return signet.Actor{}, errUnauthenticated
	}
	e, err := s.lookupKey(ctx, g, id)
	switch signet.ErrorCode(err) {
	case "":
	case signet.NotFound:
		(&signet.APIKey{Hash: dummyHash}).Matches(hash)
		return signet.Actor{KeyID: id}, errUnauthenticated
	default:
		return signet.Actor{}, err
	}
	key, user := e.key, e.user
	if !key.Matches(hash) || key.RevokedAt != nil {
		return signet.Actor{KeyID: id}, errUnauthenticated
	}
	now := s.now()
	last := e.lastUsed.Load()
	if (last == 0 || now.Sub(time.Unix(0, last)) >= touchInterval) && e.lastUsed.CompareAndSwap(last, now.UnixNano()) {
		// Best effort: a failure to note the last use must not refuse a
		// valid caller; the decision itself is audited separately.
		if err := s.store.Update(ctx, func(tx signet.Tx) error { return tx.TouchAPIKey(id, now) }); err != nil {
			s.logger.WarnContext(ctx, "recording key use", "key_id", id, "err", err)
		}
	}
	return signet.Actor{User: user.Name, KeyID: key.ID, Admin: user.Admin}, nil
}
