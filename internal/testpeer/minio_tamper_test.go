package testpeer

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCheckTamperRefusesLaxStore: a store that accepts every request, as a
// mock or a misconfigured server would, fails the start-up check with
// errTamper, so no test runs against it; a store that refuses only
// tampered signatures but fails the untampered ones fails too.
func TestCheckTamperRefusesLaxStore(t *testing.T) {
	stored := map[string][]byte{}
	lax := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			stored[r.URL.Path] = b
		case http.MethodGet, http.MethodHead:
			if b, ok := stored[r.URL.Path]; ok {
				w.Write(b)
				return
			}
			if r.URL.Query().Get("X-Amz-Signature") == "" {
				w.WriteHeader(http.StatusNotFound)
			}
		}
	}))
	defer lax.Close()
	p := &MinIOPeer{Endpoint: lax.URL, AccessKeyID: "root", SecretAccessKey: "secret", Region: "us-east-1"}
	if err := p.checkTamper(); !errors.Is(err, errTamper) {
		t.Errorf("a store that accepts any URL: checkTamper = %v, want errTamper", err)
	}

	refusesAll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer refusesAll.Close()
	p.Endpoint = refusesAll.URL
	if err := p.checkTamper(); err == nil {
		t.Error("a store that refuses every pre-signed URL passed the check")
	}
}

// TestMinIOVersionPinned: the version the skip message names is the one
// CI builds, and the one install.sh builds when not told otherwise.
func TestMinIOVersionPinned(t *testing.T) {
	b, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`SIGNET_MINIO_VERSION:-([^}]+)}`).FindSubmatch(b)
	if m == nil || string(m[1]) != MinIOVersion {
		t.Errorf(".ci/run pins MinIO %q, MinIOVersion is %q", m, MinIOVersion)
	}
	checkPinned(t, "minio_version", "SIGNET_MINIO_VERSION", MinIOVersion,
		MinIOInstall, "GOTOOLCHAIN=auto GOBIN=~/.cache/signet/bin go install github.com/minio/minio@")
}

// checkPinned fails t unless install.sh sets variable to version when the
// environment variable env is unset, and the skip message install gives
// the command cmd followed by that version.
func checkPinned(t *testing.T, variable, env, version, install, cmd string) {
	t.Helper()
	sh, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if want := variable + `="${` + env + `:-` + version + `}"`; !strings.Contains(string(sh), want) {
		t.Errorf("install.sh does not default to %s (no %s)", version, want)
	}
	if !strings.Contains(install, cmd+version) {
		t.Errorf("the skip message does not give the pinned build command %s%s: %s", cmd, version, install)
	}
}
