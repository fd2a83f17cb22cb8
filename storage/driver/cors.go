package driver

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// CORSProbe asks a store what a browser may do with one object, the way a
// browser would: a preflight per method (GET, HEAD, PUT) and an unsigned
// GET whose (error) answer shows the exposed headers. It sends no
// credentials and changes nothing; doctor uses it when the store's CORS
// rules cannot be read.
type CORSProbe struct {
	Client *http.Client // nil means http.DefaultClient
	URL    string       // an object below the connector's prefix
	// PutHeader, when set, is a request header a browser's PUT sends
	// (asked for in the PUT preflight, and required to be allowed);
	// PutRefused is what Missing reports, after the origin, when it is not.
	PutHeader, PutRefused string
	// Match reports whether a name the store lists in a CORS answer
	// header covers name; nil means strings.EqualFold. "*" always does.
	Match func(listed, name string) bool
}

// Missing returns what the store does not allow a browser at each origin:
// "ORIGIN METHOD", "ORIGIN PutRefused" and "ORIGIN (ETag not exposed)". The origin "*" is
// probed as a made-up origin. An error means the store did not answer.
func (p *CORSProbe) Missing(ctx context.Context, origins []string) ([]string, error) {
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	match := p.Match
	if match == nil {
		match = strings.EqualFold
	}
	send := func(method, origin, preflight string) (http.Header, int, error) {
		req, err := http.NewRequestWithContext(ctx, method, p.URL, nil)
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Origin", origin)
		if preflight != "" {
			req.Header.Set("Access-Control-Request-Method", preflight)
			if preflight == http.MethodPut && p.PutHeader != "" {
				req.Header.Set("Access-Control-Request-Headers", p.PutHeader)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		resp.Body.Close()
		return resp.Header, resp.StatusCode, nil
	}
	listed := func(h http.Header, name, want string) bool {
		return slices.ContainsFunc(strings.Split(h.Get(name), ","), func(a string) bool {
			a = strings.TrimSpace(a)
			return a == "*" || match(a, want)
		})
	}
	var missing []string
	for _, o := range origins {
		probe := o
		if o == "*" {
			probe = "https://signet-doctor.invalid"
		}
		for _, m := range []string{"GET", "HEAD", "PUT"} {
			h, st, err := send(http.MethodOptions, probe, m)
			if err != nil {
				return nil, err
			}
			allowOrigin := h.Get("Access-Control-Allow-Origin")
			if st/100 != 2 || (allowOrigin != "*" && !strings.EqualFold(allowOrigin, probe)) || !listed(h, "Access-Control-Allow-Methods", m) {
				missing = append(missing, o+" "+m)
			} else if m == http.MethodPut && p.PutHeader != "" && !listed(h, "Access-Control-Allow-Headers", p.PutHeader) {
				missing = append(missing, o+" "+p.PutRefused)
			}
		}
		h, _, err := send(http.MethodGet, probe, "")
		if err != nil {
			return nil, err
		}
		if !listed(h, "Access-Control-Expose-Headers", "ETag") {
			missing = append(missing, o+" (ETag not exposed)")
		}
	}
	return missing, nil
}
