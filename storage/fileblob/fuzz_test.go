package fileblob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/signetdev/signet/storage/driver"
)

// FuzzVerify feeds arbitrary methods and request targets to the URL checker.
// It must never panic, and every URL it accepts must carry exactly the
// values of a URL the store signed (the seeds), for the method signed.
func FuzzVerify(f *testing.F) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Open(f.TempDir(), Options{
		BaseURL: "http://blob.test",
		Keys: []Key{
			{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)},
			{ID: "k2", Secret: bytes.Repeat([]byte{2}, 32)},
		},
		Now: func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()

	sum := sha256.Sum256([]byte("x"))
	exp := now.Add(time.Hour)
	opts := []driver.SignOptions{
		{Method: "GET", Bucket: "b", Key: "a/b.txt", Expires: exp, Size: -1},
		{Method: "HEAD", Bucket: "b", Key: "%2e%2ex/y", Expires: exp, Size: -1, GrantID: "g1"},
		{Method: "PUT", Bucket: "b", Key: "k", Expires: exp, Size: 10, ContentType: "text/plain; charset=utf-8", SHA256: sum[:],
			ClientPrefix: netip.MustParsePrefix("192.0.2.0/24"), GrantID: "g2"},
		{Method: "PUT", Bucket: "b-2.x", Key: "ü 🙂/+&=?", Expires: exp, Size: -1,
			UploadID: "0123456789abcdef0123456789abcdef", PartNumber: 7, ClientPrefix: netip.MustParsePrefix("2001:db8::/32")},
		{Method: "GET", Bucket: "b", Key: "expired", Expires: now, Size: -1},
	}
	signed := map[string]bool{}
	for _, o := range opts {
		u, err := s.SignedURL(context.Background(), &o)
		if err != nil {
			f.Fatal(err)
		}
		pu, err := url.Parse(u.URL)
		if err != nil {
			f.Fatal(err)
		}
		c, sig, reason := parseQuery(pu.RawQuery)
		if c == nil {
			f.Fatalf("own URL refused: %s", reason)
		}
		c.Bucket, c.Key = o.Bucket, o.Key
		if !s.verify(c, sig) {
			f.Fatal("own URL does not verify")
		}
		signed[string(c.canonical())] = true
		f.Add(o.Method, pu.RequestURI(), "192.0.2.1")
		f.Add("PUT", pu.RequestURI()+"&size=1", "2001:db8::1")
	}
	f.Add("GET", "/blob/b/a/../x?v=1", "::ffff:192.0.2.1")
	f.Add("GET", "/blob/b/k?v=1&kid=k1&method=GET&expires=99999999999&sig=AAAA", "")

	f.Fuzz(func(t *testing.T, method, target, ip string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		addr, _ := netip.ParseAddr(ip)
		c, p := s.authorize(method, u.Path, u.RawQuery, addr, &access{})
		if (c == nil) == (p == nil) {
			t.Fatalf("authorize returned claims %v and problem %v", c, p)
		}
		if p != nil {
			if p.status < 400 || p.status > 499 {
				t.Fatalf("refusal with status %d", p.status)
			}
			return
		}
		switch {
		case !signed[string(c.canonical())]:
			t.Fatalf("accepted a URL it did not sign: %s %q", method, target)
		case method != c.Method:
			t.Fatalf("accepted %s with a URL signed for %s", method, c.Method)
		case now.Unix() >= c.Expires:
			t.Fatal("accepted an expired URL")
		case c.ClientPrefix.IsValid() && !prefixContains(c.ClientPrefix, addr):
			t.Fatal("accepted a client outside the signed network")
		case c.UploadID != "" && method != http.MethodPut:
			t.Fatal("accepted a part URL for a method other than PUT")
		}
	})
}
