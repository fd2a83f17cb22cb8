package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPResolver finds the address of the client behind a request. The
// client is the TCP peer, unless the peer is a trusted proxy: then the
// forwarding headers are read from the right (the entries the proxies
// themselves appended), skipping trusted proxies, and the first untrusted
// address is the client. Entries to the left of it were written by the
// client and are never believed. IPv4-mapped IPv6 addresses compare as
// IPv4. The zero resolver trusts no proxy.
type ClientIPResolver struct {
	TrustedProxies []netip.Prefix
}

// ClientIP returns the client's address, or the zero Addr when even the
// peer address cannot be parsed.
func (c ClientIPResolver) ClientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !c.trusted(peer) {
		return peer
	}
	chain := forwardedChain(r.Header)
	for i := len(chain) - 1; i >= 0; i-- {
		a := chain[i]
		if !a.IsValid() {
			// A malformed entry: everything left of it is unreliable,
			// so the last trusted hop is the best answer.
			return peer
		}
		if !c.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (c ClientIPResolver) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// forwardedChain returns the addresses of the forwarding headers in order,
// client side first: RFC 7239 Forwarded when present, else X-Forwarded-For.
// Every header line counts, in order. Entries that are not addresses
// ("unknown", obfuscated identifiers, garbage) yield the zero Addr.
func forwardedChain(h http.Header) []netip.Addr {
	var out []netip.Addr
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				var addr netip.Addr
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						addr = parseForwardedNode(v)
					}
				}
				out = append(out, addr)
			}
		}
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, part := range strings.Split(line, ",") {
			a, _ := netip.ParseAddr(strings.TrimSpace(part))
			out = append(out, a.Unmap())
		}
	}
	return out
}

// parseForwardedNode parses a Forwarded "for" value: 192.0.2.1,
// "192.0.2.1:4711", "[2001:db8::1]", "[2001:db8::1]:4711".
func parseForwardedNode(v string) netip.Addr {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}
		}
		a, _ := netip.ParseAddr(v[1:end])
		return a.Unmap()
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	}
	a, _ := netip.ParseAddr(v)
	return a.Unmap()
}
