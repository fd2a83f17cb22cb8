// Package testpeer starts real servers on 127.0.0.1 for tests: stores whose
// acceptance of a signed URL is the point of a test, so they are never
// replaced by mocks.
//
// A peer's binary is looked up when a test asks for it. When it is missing
// the test is skipped with a message that says how to install it, unless
// the environment variable SIGNET_TEST_PEERS is "require" (as in CI), in
// which case the test fails, so a run cannot pass by skipping.
package testpeer

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet/internal/syncbuf"
)

// RequireEnv is the environment variable that turns a missing peer from a
// skip into a failure when set to "require".
const RequireEnv = "SIGNET_TEST_PEERS"

// Required reports whether peers are required (SIGNET_TEST_PEERS=require).
func Required() bool { return os.Getenv(RequireEnv) == "require" }

// BinDirEnv names the environment variable that overrides BinDir.
const BinDirEnv = "SIGNET_BIN_DIR"

// BinDir is where CI and install.sh keep peer binaries: $SIGNET_BIN_DIR
// when set, else ~/.cache/signet/bin.
func BinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "signet", "bin")
}

// findBinary returns the path of a peer's binary: the file named by the
// environment variable envVar when it is set (and nothing else, so a
// variable pointing to a missing file means "absent"), else name in
// BinDir, else name on PATH. ok is false when none exists.
func findBinary(envVar, name string) (path string, ok bool) {
	if p, set := os.LookupEnv(envVar); set && p != "" {
		return p, isExecutable(p)
	}
	if dir := BinDir(); dir != "" {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}

// needBinary returns the path of a peer's binary (findBinary), or skips or
// fails tb (absent) with howto when there is none.
func needBinary(tb testing.TB, envVar, name, howto string) string {
	tb.Helper()
	bin, ok := findBinary(envVar, name)
	if !ok {
		what := name + " binary"
		if bin != "" {
			what = fmt.Sprintf("%s binary (%s=%s)", name, envVar, bin)
		}
		absent(tb, what, howto)
	}
	return bin
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// absent skips tb (or fails it when peers are required) with how-to.
func absent(tb testing.TB, what, howto string) {
	tb.Helper()
	msg := fmt.Sprintf("testpeer: %s not found; %s", what, howto)
	if Required() {
		tb.Fatalf("%s (%s=require, so a missing peer fails the test)", msg, RequireEnv)
	}
	tb.Skip(msg)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RandomName returns prefix followed by 12 random lower-case hex digits,
// usable as a bucket name.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return strings.ToLower(prefix) + hex.EncodeToString(b)
}

// process is a peer's server process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	dir  string        // the peer's files, removed by stop ("" for none)
	logs *syncbuf.Buffer
}

func newProcess(dir string) process {
	return process{done: make(chan struct{}), dir: dir, logs: &syncbuf.Buffer{Max: 1 << 20}}
}

// start starts cmd with its output in p.logs, to die with the test
// process; if it cannot, it removes p.dir.
func (p *process) start(cmd *exec.Cmd) error {
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(p.dir)
		return err
	}
	p.cmd = cmd
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return nil
}

// stop kills the process, waits for it to exit and removes p.dir.
func (p *process) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}
