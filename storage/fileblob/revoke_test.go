package fileblob_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// TestRevokedHook checks that the store asks the hook about the grant of
// every URL that passes the other checks, refuses revoked URLs with 403
// "revoked" and, when the hook cannot tell, with 503 (fail closed), for
// reads and writes alike.
func TestRevokedHook(t *testing.T) {
	var mu sync.Mutex
	revoked := map[string]bool{}
	var fail error
	var asked []string
	e := MustOpen(t, fileblob.Options{Revoked: func(_ context.Context, grant string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, grant)
		return revoked[grant], fail
	}})
	withGrant := func(g string) func(*driver.SignOptions) {
		return func(o *driver.SignOptions) { o.GrantID = g }
	}
	e.put("obj", []byte("data"))
	getA := e.sign(http.MethodGet, "obj", withGrant("ga"))
	getB := e.sign(http.MethodGet, "obj", withGrant("gb"))
	putA := e.sign(http.MethodPut, "obj", withGrant("ga"))

	if w := e.do(http.MethodGet, getA.URL, nil, nil); w.Code != http.StatusOK {
		t.Errorf("GET before revocation: %d %s", w.Code, w.Body)
	}
	mu.Lock()
	revoked["ga"] = true
	mu.Unlock()
	wantProblem(t, e.do(http.MethodGet, getA.URL, nil, nil), http.StatusForbidden, "revoked")
	wantProblem(t, e.do(http.MethodHead, e.sign(http.MethodHead, "obj", withGrant("ga")).URL, nil, nil), http.StatusForbidden, "revoked")
	wantProblem(t, e.do(http.MethodPut, putA.URL, nil, []byte("new")), http.StatusForbidden, "revoked")
	if w := e.do(http.MethodGet, getB.URL, nil, nil); w.Code != http.StatusOK || w.Body.String() != "data" {
		t.Errorf("GET of another grant: %d %q; the revoked PUT must not have written", w.Code, w.Body)
	}

	mu.Lock()
	fail = errors.New("store down")
	mu.Unlock()
	wantProblem(t, e.do(http.MethodGet, getB.URL, nil, nil), http.StatusServiceUnavailable, "revocation_unknown")

	// A URL refused for another reason never reaches the hook: a tampered
	// one is a signature error whatever its grant.
	mu.Lock()
	fail, asked = nil, nil
	mu.Unlock()
	wantProblem(t, e.do(http.MethodGet, getB.URL+"x", nil, nil), http.StatusForbidden, "signature_invalid")
	mu.Lock()
	if len(asked) != 0 {
		t.Errorf("hook asked about %q for a tampered URL", asked)
	}
	mu.Unlock()
}
