package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConfigFile(t *testing.T) {
	write := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "signet.yaml")
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	t.Run("OK", func(t *testing.T) {
		c := DefaultConfig()
		if err := ReadConfigFile(write(t, "addr: 127.0.0.1:9999\ndata_dir: /tmp/x\n"), &c); err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:9999" || c.DataDir != "/tmp/x" || c.LogLevel != "info" {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("ErrUnknownKey", func(t *testing.T) {
		c := DefaultConfig()
		err := ReadConfigFile(write(t, "addr: 127.0.0.1:9999\nlisten_adress: x\n"), &c)
		if err == nil || !strings.Contains(err.Error(), `"listen_adress"`) {
			t.Errorf("err = %v, want one naming listen_adress", err)
		}
	})
	t.Run("ErrUnknownKeyFromCLI", func(t *testing.T) {
		r := cli{tb: t}.run("serve", "--config", write(t, "bogus: 1\n"))
		if r.code != 2 || !strings.Contains(r.stderr, `"bogus"`) {
			t.Errorf("serve with unknown key: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrTrustedProxyHostBits", func(t *testing.T) {
		r := cli{tb: t}.run("serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--trusted-proxy", "10.0.0.1/8")
		if r.code != 2 || !strings.Contains(r.stderr, "10.0.0.0/8") {
			t.Errorf("trusted proxy with host bits: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrType", func(t *testing.T) {
		c := DefaultConfig()
		if err := ReadConfigFile(write(t, "addr: [1, 2]\n"), &c); err == nil {
			t.Error("a list for addr was accepted")
		}
	})
}

func TestCLIErrors(t *testing.T) {
	m, token := MustRunMain(t)
	c := cli{tb: t, addr: m.URL(), token: token}
	if r := c.run("team", "create"); r.code != 2 {
		t.Errorf("missing argument: exit %d, want 2", r.code)
	}
	if r := c.run("team", "create", "Bad Name"); r.code != 1 || !strings.Contains(r.stderr, "(invalid)") {
		t.Errorf("bad team name: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("team", "create", "default"); r.code != 1 || !strings.Contains(r.stderr, "(conflict)") {
		t.Errorf("duplicate team: exit %d %q", r.code, r.stderr)
	}
	if r := c.as("").run("whoami"); r.code != 2 || !strings.Contains(r.stderr, "SIGNET_TOKEN") {
		t.Errorf("no token: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("connector", "set", "default", "--backend", "ftp", "--bucket", "b"); r.code != 1 || !strings.Contains(r.stderr, "(invalid)") {
		t.Errorf("unknown backend: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("connector", "set", "default", "--backend", "s3", "--bucket", "b"); r.code != 1 || !strings.Contains(r.stderr, "(invalid)") {
		t.Errorf("s3 bucket name too short: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("presign", "get", "default", "x", "--expires-in", "2h"); r.code != 1 || !strings.Contains(r.stderr, "(invalid_expiry)") {
		t.Errorf("expiry over cap: exit %d %q", r.code, r.stderr)
	}
	// Fractions are refused before any request, with what to give
	// instead (they used to reach the server as -1 and come back as "at
	// least 1 second").
	if r := c.run("presign", "get", "default", "x", "--expires-in", "1.5s"); r.code != 2 || !strings.Contains(r.stderr, "whole seconds") {
		t.Errorf("fractional expiry: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("team", "set", "default", "--download-max", "1500ms"); r.code != 2 || !strings.Contains(r.stderr, "--download-max 1.5s: give whole seconds") {
		t.Errorf("fractional cap: exit %d %q", r.code, r.stderr)
	}
	r := c.run("presign", "put", "default", "x", "--content-type", "text/plain")
	if r.code != 0 || !strings.Contains(r.stderr, "Content-Type: text/plain") {
		t.Errorf("presign put headers on stderr: exit %d %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "sig=") || !strings.Contains(r.stdout, "sig=") {
		t.Errorf("URL must go to stdout only: stdout %q stderr %q", r.stdout, r.stderr)
	}
}
