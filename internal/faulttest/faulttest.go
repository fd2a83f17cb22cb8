// Package faulttest runs signet's real HTTP server on a store a test can
// break, and checks that it fails closed and recovers: the tests that use
// it (sqlite/fault_test.go, postgres/fault_test.go) bring the store and
// the fault (a full database, a cut or stalled connection).
package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// Env is a signet API server on a store, with a team "ml" on the built-in
// local store and a member's token.
type Env struct {
	tb    testing.TB
	Store signet.Store
	URL   string
	Token string
}

// Start serves store and seeds it.
func Start(tb testing.TB, store signet.Store) *Env {
	tb.Helper()
	dir := tb.TempDir()
	keys, err := fileblob.LoadOrCreateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	var blob *fileblob.Store
	srv := sighttp.NewServer(sighttp.Config{
		Store: store,
		Backends: func(context.Context, *signet.Connector, map[string]string) (driver.Backend, error) {
			return blob, nil
		},
		Blob: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { blob.ServeHTTP(w, r) }),
	})
	ts := httptest.NewServer(srv)
	tb.Cleanup(ts.Close)
	if blob, err = fileblob.Open(filepath.Join(dir, "blobs"), fileblob.Options{BaseURL: ts.URL, Keys: keys}); err != nil {
		tb.Fatal(err)
	}
	tok, id, hash := signet.NewAPIKeyToken()
	err = store.Update(context.Background(), func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "ml"}); err != nil {
			return err
		}
		if err := tx.SetConnector(&signet.Connector{Team: "ml", Backend: signet.BackendLocal, Bucket: "ml"}); err != nil {
			return err
		}
		if err := tx.CreateUser(&signet.User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.SetMember(&signet.Member{Team: "ml", User: "alice", Role: signet.RoleMember}); err != nil {
			return err
		}
		return tx.CreateAPIKey(&signet.APIKey{ID: id, User: "alice", Hash: hash})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{tb: tb, Store: store, URL: ts.URL, Token: tok}
}

// Answer is an HTTP response, read.
type Answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	Elapsed time.Duration
}

// Code returns the problem's code.
func (a Answer) Code() string {
	var p struct{ Code string }
	json.Unmarshal(a.Body, &p)
	return p.Code
}

func (e *Env) do(method, path, token, body string) Answer {
	e.tb.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}
}

// Presign asks for an upload URL for key.
func (e *Env) Presign(key string) Answer {
	e.tb.Helper()
	return e.do("POST", "/v1/teams/ml/presign", e.Token, `{"operation":"upload","objects":[{"key":"`+key+`"}]}`)
}

// Readyz asks the server whether it is ready.
func (e *Env) Readyz() Answer {
	e.tb.Helper()
	return e.do("GET", "/readyz", "", "")
}

// FailedClosed checks that a is the refusal the issue asks for when the
// audit record cannot be made durable: 503 with Retry-After, code
// "unavailable", and no URL anywhere in the body.
func FailedClosed(tb testing.TB, what string, a Answer) {
	tb.Helper()
	if a.Status != http.StatusServiceUnavailable || a.Header.Get("Retry-After") == "" || a.Code() != string(signet.Unavailable) {
		tb.Errorf("%s: %d Retry-After %q %s; want 503 with Retry-After, code unavailable",
			what, a.Status, a.Header.Get("Retry-After"), a.Body)
	}
	if bytes.Contains(a.Body, []byte("/blob/")) || bytes.Contains(a.Body, []byte("sig=")) || bytes.Contains(a.Body, []byte(`"url"`)) {
		tb.Errorf("%s: the refusal holds a URL: %s", what, a.Body)
	}
}

// NotReady checks that /readyz reports the store unavailable.
func NotReady(tb testing.TB, e *Env, what string) {
	tb.Helper()
	if a := e.Readyz(); a.Status != http.StatusServiceUnavailable || a.Header.Get("Retry-After") == "" {
		tb.Errorf("readyz %s: %d %s, want 503 with Retry-After", what, a.Status, a.Body)
	}
}

// Recovered checks that the server serves again without a restart:
// /readyz is ready, a presign for key gets its URL, the audit log holds an
// allowed entry with the answer's request id, key and the URL's grant id,
// and the whole log verifies as one chain.
func Recovered(tb testing.TB, e *Env, key string) {
	tb.Helper()
	if a := e.Readyz(); a.Status != http.StatusOK {
		tb.Errorf("readyz after the store returned: %d %s", a.Status, a.Body)
	}
	a := e.Presign(key)
	if a.Status != http.StatusOK {
		tb.Fatalf("presign after the store returned: %d %s", a.Status, a.Body)
	}
	var resp sighttp.PresignResponse
	if err := json.Unmarshal(a.Body, &resp); err != nil || len(resp.Objects) != 1 || resp.Objects[0].URL == "" {
		tb.Fatalf("presign after the store returned: %s", a.Body)
	}
	u, err := url.Parse(resp.Objects[0].URL)
	if err != nil {
		tb.Fatal(err)
	}
	grant := u.Query().Get("grant")
	rid := a.Header.Get("X-Request-Id")
	var found bool
	err = e.Store.View(context.Background(), func(tx signet.Tx) error {
		for after := int64(0); ; {
			evs, err := tx.Audit(signet.AuditFilter{AfterID: after, Limit: 1000})
			if err != nil || len(evs) == 0 {
				return err
			}
			for _, ev := range evs {
				if ev.RequestID == rid && ev.ObjectKey == key && ev.Outcome == signet.OutcomeAllowed &&
					ev.Action == signet.ActionPresignUpload && grant != "" && ev.GrantID == grant {
					found = true
				}
			}
			after = evs[len(evs)-1].ID
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	if !found {
		tb.Errorf("no allowed audit entry for request %s, key %s, grant %s", rid, key, grant)
	}
	res, err := auditlog.VerifyStore(context.Background(), e.Store, signet.AuditHead{})
	if err != nil {
		tb.Errorf("audit log after the fault: %v", err)
	} else {
		tb.Logf("audit log verifies: %d entries", res.Entries)
	}
}
