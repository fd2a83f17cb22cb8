package signet

import "strings"

// Overlaps reports whether connectors a and b can address the same objects:
// same backend, same endpoint, same bucket, and one prefix a prefix of the
// other ("" is the whole bucket). It errs on the side of overlap, since a
// false "no" would let one team reach another's data: names compare
// case-insensitively; endpoints ignore the scheme, a default port and a
// trailing slash; an empty endpoint (the backend's default) matches every
// endpoint; the local backend has no endpoint; and prefixes compare as plain
// strings, so "ml" overlaps "ml2/".
func (a *Connector) Overlaps(b *Connector) bool {
	if !strings.EqualFold(a.Backend, b.Backend) || !strings.EqualFold(a.Bucket, b.Bucket) {
		return false
	}
	if !strings.EqualFold(a.Backend, BackendLocal) {
		ea, eb := endpointKey(a.Endpoint), endpointKey(b.Endpoint)
		if ea != "" && eb != "" && ea != eb {
			return false
		}
	}
	pa, pb := strings.ToLower(a.Prefix), strings.ToLower(b.Prefix)
	return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
}

// endpointKey reduces an endpoint URL to lower-case host[:port][/path]
// without scheme, default port or trailing slash.
func endpointKey(e string) string {
	e = strings.ToLower(strings.TrimSpace(e))
	if scheme, rest, ok := strings.Cut(e, "://"); ok {
		e = rest
		host, path, _ := strings.Cut(e, "/")
		switch {
		case scheme == "https" && strings.HasSuffix(host, ":443"):
			host = strings.TrimSuffix(host, ":443")
		case scheme == "http" && strings.HasSuffix(host, ":80"):
			host = strings.TrimSuffix(host, ":80")
		}
		e = host
		if path != "" {
			e += "/" + path
		}
	}
	return strings.TrimRight(e, "/")
}
