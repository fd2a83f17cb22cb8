package azureblob

import (
	"context"
	"encoding/base64"
	"net/netip"
	"testing"

	"github.com/signetdev/signet"
)

func TestBlockID(t *testing.T) {
	id := newUploadID("text/plain; charset=utf-8")
	nonce, ct, ok := parseUploadID(id)
	if !ok || ct != "text/plain; charset=utf-8" || len(nonce) != nonceLen {
		t.Fatalf("parseUploadID(%q) = %q, %q, %v", id, nonce, ct, ok)
	}
	seen := map[string]bool{}
	for _, tc := range []struct {
		kind byte
		n    int
	}{{kindMarker, 0}, {kindTombstone, 0}, {kindPart, 1}, {kindPart, 2}, {kindPart, 10000}} {
		b := blockID(nonce, tc.kind, tc.n)
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil || len(b) != 48 || len(raw) != blockIDRawLen || len(raw) > 64 {
			t.Errorf("blockID(%c, %d) = %q (%d raw bytes, %v); want 48 characters of base64, 36 bytes", tc.kind, tc.n, b, len(raw), err)
		}
		if seen[b] {
			t.Errorf("blockID(%c, %d) repeats %q", tc.kind, tc.n, b)
		}
		seen[b] = true
		k, nc, n, ok := parseBlockID(b)
		if !ok || k != tc.kind || nc != nonce || n != tc.n {
			t.Errorf("parseBlockID(blockID(%c, %d)) = %c, %q, %d, %v", tc.kind, tc.n, k, nc, n, ok)
		}
	}
	if blockID(nonce, kindPart, 1) == blockID(signet.NewID(15), kindPart, 1) {
		t.Error("two uploads share a block id")
	}
	for _, b := range []string{"", "AAAA", base64.StdEncoding.EncodeToString([]byte("signetp" + nonce + "0000x")), "not base64!"} {
		if _, _, _, ok := parseBlockID(b); ok {
			t.Errorf("parseBlockID(%q) accepted a foreign block id", b)
		}
	}
	for _, id := range []string{"", "short", nonce + ".", nonce + ".!!", "ABCDEFGHIJKLMNOPQRSTUVWX", nonce[:23] + "1"} {
		if _, _, ok := parseUploadID(id); ok {
			t.Errorf("parseUploadID(%q) accepted a malformed id", id)
		}
	}
}

func TestIPRange(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string
		ok           bool
	}{
		{"127.0.0.1/32", "127.0.0.1", true},
		{"10.0.0.0/8", "10.0.0.0-10.255.255.255", true},
		{"192.168.1.128/25", "192.168.1.128-192.168.1.255", true},
		{"0.0.0.0/0", "0.0.0.0-255.255.255.255", true},
		{"::ffff:10.1.0.0/112", "10.1.0.0-10.1.255.255", true},
		{"::ffff:0.0.0.0/95", "", false},
		{"2001:db8::/32", "", false},
		{"::1/128", "", false},
	} {
		r, ok := ipRange(netip.MustParsePrefix(tc.prefix))
		if ok != tc.ok || (ok && r.String() != tc.want) {
			t.Errorf("ipRange(%s) = %q, %v; want %q, %v", tc.prefix, r.String(), ok, tc.want, tc.ok)
		}
	}
}

func TestPathEscape(t *testing.T) {
	got := string(appendPathEscaped(nil, "a b/%2e+ü?#~.x"))
	if want := "a%20b/%252e%2B%C3%BC%3F%23~.x"; got != want {
		t.Errorf("escaped %q, want %q", got, want)
	}
}

func TestOpen(t *testing.T) {
	const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	ok := Config{Account: "acct1", Container: "data", SharedKey: key}
	if _, err := Open(context.Background(), ok); err != nil {
		t.Fatalf("Open(%+v): %v", ok, err)
	}
	for name, edit := range map[string]func(*Config){
		"account":             func(c *Config) { c.Account = "Acct" },
		"container":           func(c *Config) { c.Container = "a--b" },
		"container dash":      func(c *Config) { c.Container = "-ab" },
		"prefix":              func(c *Config) { c.Prefix = "x" },
		"endpoint":            func(c *Config) { c.Endpoint = "ftp://x" },
		"endpoint query":      func(c *Config) { c.Endpoint = "https://x/?a=b" },
		"key":                 func(c *Config) { c.SharedKey = "not base64!" },
		"path-style entra id": func(c *Config) { c.SharedKey, c.Endpoint = "", "http://127.0.0.1:10000/acct1" },
	} {
		c := ok
		edit(&c)
		_, err := Open(context.Background(), c)
		if signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("%s: Open = %v, want Invalid", name, err)
		}
	}
}
