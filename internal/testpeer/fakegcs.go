package testpeer

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// FakeGCSEnv names the environment variable that points to a
// fake-gcs-server binary.
const FakeGCSEnv = "SIGNET_FAKE_GCS_BIN"

// FakeGCSVersion is the fake-gcs-server release the GCS tests run against:
// the one install.sh builds unless SIGNET_FAKEGCS_VERSION says otherwise.
const FakeGCSVersion = "v1.56.1"

// FakeGCSInstall says how to get fake-gcs-server; it is part of every skip
// message.
const FakeGCSInstall = "build it with `GOBIN=~/.cache/signet/bin go install github.com/fsouza/fake-gcs-server@" + FakeGCSVersion + "` " +
	"(about a minute), put fake-gcs-server on PATH, or set " + FakeGCSEnv + " to a fake-gcs-server binary"

// FakeGCSPeer is a running fake-gcs-server on 127.0.0.1, in memory.
//
// It does not verify signatures: it accepts any signed URL, tampered,
// expired or unsigned. It can only show that URLs address the right bucket
// and object and that bytes round-trip; signing is proven by the
// conformance vectors and by verifiers in the tests. It has no XML API
// multipart uploads either.
type FakeGCSPeer struct {
	// Endpoint is the server's XML API base URL, http://127.0.0.1:<port>.
	Endpoint string

	process
}

// FakeGCS starts a fake-gcs-server and stops it when tb ends.
//
// The binary is $SIGNET_FAKE_GCS_BIN when that is set, else
// ~/.cache/signet/bin/fake-gcs-server, else fake-gcs-server on PATH. When
// there is none, FakeGCS skips tb with a message that says how to build
// it, or fails tb when SIGNET_TEST_PEERS=require.
func FakeGCS(tb testing.TB) *FakeGCSPeer {
	tb.Helper()
	bin := needBinary(tb, FakeGCSEnv, "fake-gcs-server", FakeGCSInstall)
	var errs []error
	for range 3 {
		p, err := startFakeGCS(bin)
		if err == nil {
			tb.Cleanup(p.stop)
			return p
		}
		errs = append(errs, err)
	}
	tb.Fatalf("testpeer: starting fake-gcs-server (%s): %v", bin, errors.Join(errs...))
	return nil
}

func startFakeGCS(bin string) (*FakeGCSPeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	hostport := fmt.Sprintf("127.0.0.1:%d", port)
	p := &FakeGCSPeer{Endpoint: "http://" + hostport, process: newProcess("")}
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", fmt.Sprint(port), "-scheme", "http",
		"-backend", "memory", "-public-host", hostport, "-external-url", p.Endpoint, "-log-level", "warn")
	if err := p.start(cmd); err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("fake-gcs-server exited before it was ready; output:\n%s", p.logs.Tail(2000))
		default:
		}
		if resp, err := c.Get(p.Endpoint + "/_internal/healthcheck"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("fake-gcs-server was not ready after 30s; output:\n%s", p.logs.Tail(2000))
}

// Bucket creates a bucket with a fresh random name through the JSON API
// and returns the name.
func (p *FakeGCSPeer) Bucket(tb testing.TB) string {
	tb.Helper()
	name := RandomName("signet-")
	body := fmt.Sprintf(`{"name":%q}`, name)
	resp, err := http.Post(p.Endpoint+"/storage/v1/b", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		tb.Fatalf("testpeer: creating bucket %s: %v", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("testpeer: creating bucket %s: %s", name, resp.Status)
	}
	return name
}

// Logs returns the end of the server's output, for failure messages.
func (p *FakeGCSPeer) Logs() string { return p.logs.Tail(4000) }
