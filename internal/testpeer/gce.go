package testpeer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// GCEMetadata starts a server answering what the GCE / GKE metadata
// server does for the default service account: its e-mail, an access
// token and the project id. Point GCE_METADATA_HOST at its host to use
// it, as Google's metadata package documents.
func GCEMetadata(t testing.TB, email, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		switch r.URL.Path {
		case "/computeMetadata/v1/instance/service-accounts/default/email":
			io.WriteString(w, email)
		case "/computeMetadata/v1/instance/service-accounts/default/token":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, token)
		case "/computeMetadata/v1/project/project-id":
			io.WriteString(w, "test-project")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// NoGoogleCredentials makes the process look like a machine without
// Google credentials, whatever the developer's own setup: no key file, no
// gcloud configuration, no metadata server.
func NoGoogleCredentials(t testing.TB) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", "")
}

// SignBlob stands in for the IAM Service Account Credentials API's
// signBlob method. No real Google IAM is reachable offline (and none would
// sign for a test identity), so it is written from the API reference: it
// holds an RSA key standing for the service account's Google-managed key,
// checks the request's shape (POST /v1/projects/-/serviceAccounts/EMAIL:signBlob,
// a JSON body holding only the base64 payload, a GOOG4-RSA-SHA256 string
// to sign) and the caller's bearer token, and answers the payload's
// RSASSA-PKCS1-v1_5 SHA-256 signature. A request of the wrong shape fails
// the test when it ends.
type SignBlob struct {
	URL string

	// Calls counts the requests.
	Calls atomic.Int64
	// Fail, when not zero, is the status every call is answered with.
	Fail atomic.Int64
	// Garbage makes the answer's signedBlob unusable.
	Garbage atomic.Bool

	key   *rsa.PrivateKey
	email string
	token string

	mu       sync.Mutex
	problems []string
	signed   map[string]bool // hex signatures answered
}

// StartSignBlob starts a SignBlob server for email that accepts token.
func StartSignBlob(t testing.TB, key *rsa.PrivateKey, email, token string) *SignBlob {
	t.Helper()
	s := &SignBlob{key: key, email: email, token: token, signed: map[string]bool{}}
	srv := httptest.NewServer(s)
	s.URL = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		for _, p := range s.problems {
			t.Errorf("signBlob request: %s", p)
		}
	})
	return s
}

// Signed reports whether the server answered with signature sig (hex, as
// in a V4 URL's X-Goog-Signature).
func (s *SignBlob) Signed(sig string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed[sig]
}

func (s *SignBlob) problem(w http.ResponseWriter, status int, format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	http.Error(w, `{"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}`, status)
}

func (s *SignBlob) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Calls.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		// Not a problem of the request's shape: error tests send a wrong
		// token on purpose.
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/-/serviceAccounts/"+s.email+":signBlob" {
		s.problem(w, http.StatusNotFound, "%s %s, want POST /v1/projects/-/serviceAccounts/%s:signBlob", r.Method, r.URL.Path, s.email)
		return
	}
	if st := s.Fail.Load(); st != 0 {
		w.WriteHeader(int(st))
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"refused by the test","status":"X"}}`, st)
		return
	}
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.problem(w, http.StatusBadRequest, "body is not JSON: %v", err)
		return
	}
	p, _ := req["payload"].(string)
	payload, err := base64.StdEncoding.DecodeString(p)
	if err != nil || len(payload) == 0 || len(req) != 1 {
		s.problem(w, http.StatusBadRequest, "body %v, want only a base64 payload", req)
		return
	}
	if !strings.HasPrefix(string(payload), "GOOG4-RSA-SHA256\n") {
		s.problem(w, http.StatusBadRequest, "payload %q is not a GOOG4-RSA-SHA256 string to sign", payload)
		return
	}
	d := sha256.Sum256(payload)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	if err != nil {
		s.problem(w, http.StatusInternalServerError, "signing: %v", err)
		return
	}
	s.mu.Lock()
	s.signed[hex.EncodeToString(sig)] = true
	s.mu.Unlock()
	blob := base64.StdEncoding.EncodeToString(sig)
	if s.Garbage.Load() {
		blob = "not base64!"
	}
	json.NewEncoder(w).Encode(map[string]string{"keyId": "0123abcd", "signedBlob": blob})
}
