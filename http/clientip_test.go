package http_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	sighttp "github.com/signetdev/signet/http"
)

func TestClientIP(t *testing.T) {
	proxies := sighttp.ClientIPResolver{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}
	cases := []struct {
		name   string
		res    sighttp.ClientIPResolver
		peer   string
		header map[string][]string
		want   string
	}{
		{"no proxy trusted: peer", sighttp.ClientIPResolver{}, "203.0.113.9:555", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.9"},
		{"untrusted peer spoofs XFF", proxies, "203.0.113.9:555", map[string][]string{"X-Forwarded-For": {"10.1.1.1"}}, "203.0.113.9"},
		{"trusted proxy, one hop", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"client-written entries left of the real one are ignored", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7"}}, "198.51.100.7"},
		{"two trusted hops", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"198.51.100.7, 10.9.9.9"}}, "198.51.100.7"},
		{"several header lines in order", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.7, 10.2.2.2"}}, "198.51.100.7"},
		{"all trusted: leftmost", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "10.3.3.3"},
		{"malformed entry stops the walk", proxies, "10.0.0.5:555", map[string][]string{"X-Forwarded-For": {"198.51.100.7, garbage"}}, "10.0.0.5"},
		{"no header: the proxy itself", proxies, "10.0.0.5:555", nil, "10.0.0.5"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.0.0.5]:555", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"Forwarded wins over XFF", proxies, "10.0.0.5:555", map[string][]string{"Forwarded": {`for=198.51.100.7;proto=https`}, "X-Forwarded-For": {"6.6.6.6"}}, "198.51.100.7"},
		{"Forwarded IPv6 with port", proxies, "[fd00::1]:555", map[string][]string{"Forwarded": {`for="[2001:db8::5]:4711", for=10.1.1.1`}}, "2001:db8::5"},
		{"Forwarded unknown", proxies, "10.0.0.5:555", map[string][]string{"Forwarded": {`for=unknown`}}, "10.0.0.5"},
		{"Forwarded obfuscated", proxies, "10.0.0.5:555", map[string][]string{"Forwarded": {`for=_hidden, for=198.51.100.7`}}, "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			for k, vs := range c.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := c.res.ClientIP(r); got.String() != c.want {
				t.Errorf("ClientIP = %v, want %s", got, c.want)
			}
		})
	}
}
