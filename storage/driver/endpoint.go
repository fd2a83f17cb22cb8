package driver

import "net/url"

// ValidEndpoint reports whether u, a store's configured endpoint, is an
// absolute http or https URL with a host and without user info, query or
// fragment. (A URL with a host has no opaque part.) Which paths are allowed
// is the driver's to check.
func ValidEndpoint(u *url.URL) bool {
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == ""
}
