package signet

import (
	"net/netip"
	"strings"
)

// ParseNetworks parses a team's allowed networks: CIDR prefixes separated
// by commas (or given one per element). IPv4 and IPv6 are accepted; a
// prefix with host bits set (10.0.0.1/8) is refused rather than silently
// widened, as is an IPv4-mapped IPv6 prefix. Invalid on any bad entry.
func ParseNetworks(items ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, Errorf(Invalid, "%q is not a network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)", s)
			}
			if p.Addr().Is4In6() {
				return nil, Errorf(Invalid, "network %q: write IPv4 networks in IPv4 form", s)
			}
			if p.Masked() != p {
				return nil, Errorf(Invalid, "network %q has host bits set; did you mean %s?", s, p.Masked())
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// FormatNetworks is the inverse of ParseNetworks: canonical prefixes
// joined by commas.
func FormatNetworks(ps []netip.Prefix) string {
	return strings.Join(NetworkStrings(ps), ",")
}

// NetworkStrings returns each of ps in CIDR notation.
func NetworkStrings(ps []netip.Prefix) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}

// AllowsFrom reports whether a client at addr may act for the team, and
// the allowed network that contains it. A team without networks allows
// every address (and returns the zero Prefix).
func (t *Team) AllowsFrom(addr netip.Addr) (netip.Prefix, bool) {
	if len(t.AllowNetworks) == 0 {
		return netip.Prefix{}, true
	}
	addr = addr.Unmap()
	for _, p := range t.AllowNetworks {
		if p.Contains(addr) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
