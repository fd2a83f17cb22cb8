package gcsblob

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet/storage/driver"
)

// Signing algorithms of GCS V4 signatures.
const (
	algRSA  = "GOOG4-RSA-SHA256"
	algHMAC = "GOOG4-HMAC-SHA256"

	unsignedPayload = "UNSIGNED-PAYLOAD"
	scopeSuffix     = "/auto/storage/goog4_request"
	// maxExpires is GCS's longest signed URL lifetime, in seconds.
	maxExpires = 7 * 24 * 60 * 60
)

// param is a query parameter or header, not yet encoded.
type param struct{ name, value string }

// signer makes GCS V4 query-string signatures (GOOG4-RSA-SHA256 or
// GOOG4-HMAC-SHA256). Its key is parsed or derived once. It is safe for
// concurrent use.
type signer struct {
	alg string
	id  string // service account e-mail or HMAC access id; "" when keyless

	rsaKey *rsa.PrivateKey // GOOG4-RSA-SHA256 with a key file
	secret string          // GOOG4-HMAC-SHA256
	iam    *iamSigner      // GOOG4-RSA-SHA256 through signBlob (keyless)

	// day caches the HMAC signing key of one UTC date.
	day atomic.Pointer[dayKey]
}

type dayKey struct {
	date string
	key  []byte
}

// request is what a signed URL covers.
type request struct {
	method string
	host   string // Host header value
	path   string // escaped path, starting with "/"
	// query holds parameters besides the X-Goog-* ones the signer adds.
	query []param
	// headers holds the signed headers besides host; names in any case.
	headers []param
	time    time.Time
	expires int64 // seconds
}

// signed is the result of signing a request.
type signed struct {
	query            string // the URL's whole query, X-Goog-Signature last
	canonicalRequest string
	stringToSign     string
}

// presign signs r. With a key it fails only when the RSA signer does
// (never for a valid key); keyless, it makes the signBlob call and
// returns its *signet.Error.
func (s *signer) presign(ctx context.Context, r *request) (*signed, error) {
	id := s.id
	if s.iam != nil {
		var err error
		if id, err = s.iam.identity(ctx); err != nil {
			return nil, err
		}
	}
	t := r.time.UTC()
	stamp := t.Format("20060102T150405Z")
	date := stamp[:8]

	// Canonical headers: lower-case names, sorted, values trimmed with
	// inner runs of white space collapsed.
	hdrs := make([]param, 0, len(r.headers)+1)
	hdrs = append(hdrs, param{"host", r.host})
	payload := unsignedPayload
	for _, h := range r.headers {
		name := strings.ToLower(h.name)
		v := canonicalHeaderValue(h.value)
		if name == "x-goog-content-sha256" {
			payload = v
		}
		hdrs = append(hdrs, param{name, v})
	}
	slices.SortFunc(hdrs, func(a, b param) int { return strings.Compare(a.name, b.name) })
	var signedHeaders strings.Builder
	for i, h := range hdrs {
		if i > 0 {
			signedHeaders.WriteByte(';')
		}
		signedHeaders.WriteString(h.name)
	}

	// Canonical query: every parameter encoded, sorted by encoded name,
	// then value.
	q := make([]param, 0, len(r.query)+5)
	q = append(q,
		param{"X-Goog-Algorithm", s.alg},
		param{"X-Goog-Credential", id + "/" + date + scopeSuffix},
		param{"X-Goog-Date", stamp},
		param{"X-Goog-Expires", strconv.FormatInt(r.expires, 10)},
		param{"X-Goog-SignedHeaders", signedHeaders.String()},
	)
	for _, p := range r.query {
		q = append(q, p)
	}
	for i := range q {
		q[i] = param{escape(q[i].name), escape(q[i].value)}
	}
	slices.SortFunc(q, func(a, b param) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var query strings.Builder
	for i, p := range q {
		if i > 0 {
			query.WriteByte('&')
		}
		query.WriteString(p.name)
		query.WriteByte('=')
		query.WriteString(p.value)
	}

	var cr strings.Builder
	cr.Grow(256 + query.Len())
	cr.WriteString(r.method)
	cr.WriteByte('\n')
	cr.WriteString(r.path)
	cr.WriteByte('\n')
	cr.WriteString(query.String())
	cr.WriteByte('\n')
	for _, h := range hdrs {
		cr.WriteString(h.name)
		cr.WriteByte(':')
		cr.WriteString(h.value)
		cr.WriteByte('\n')
	}
	cr.WriteByte('\n')
	cr.WriteString(signedHeaders.String())
	cr.WriteByte('\n')
	cr.WriteString(payload)

	sum := sha256.Sum256([]byte(cr.String()))
	sts := s.alg + "\n" + stamp + "\n" + date + scopeSuffix + "\n" + hex.EncodeToString(sum[:])

	var sig []byte
	if s.iam != nil {
		var err error
		if sig, err = s.iam.sign(ctx, []byte(sts)); err != nil {
			return nil, err
		}
	} else if s.rsaKey != nil {
		digest := sha256.Sum256([]byte(sts))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsaKey, crypto.SHA256, digest[:]); err != nil {
			return nil, err
		}
	} else {
		m := hmac.New(sha256.New, s.signingKey(date))
		m.Write([]byte(sts))
		sig = m.Sum(nil)
	}
	out := query.String() + "&X-Goog-Signature=" + hex.EncodeToString(sig)
	return &signed{query: out, canonicalRequest: cr.String(), stringToSign: sts}, nil
}

// signingKey returns the HMAC signing key of date (YYYYMMDD), derived as
// GCS documents: HMAC chains over "GOOG4"+secret, the date, "auto",
// "storage" and "goog4_request". One date's key is cached.
func (s *signer) signingKey(date string) []byte {
	if k := s.day.Load(); k != nil && k.date == date {
		return k.key
	}
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	k := mac([]byte("GOOG4"+s.secret), date)
	for _, part := range []string{"auto", "storage", "goog4_request"} {
		k = mac(k, part)
	}
	s.day.Store(&dayKey{date: date, key: k})
	return k
}

// canonicalHeaderValue trims v and collapses each inner run of spaces and
// tabs into one space.
func canonicalHeaderValue(v string) string {
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}

// escape percent-encodes s for a canonical query: every byte but the
// unreserved characters of RFC 3986.
func escape(s string) string {
	return string(appendEscaped(make([]byte, 0, len(s)+8), s, false))
}

// appendEscaped appends s percent-encoded: every byte but the unreserved
// characters of RFC 3986, and "/" when keepSlash.
func appendEscaped(dst []byte, s string, keepSlash bool) []byte {
	return driver.AppendEscaped(dst, s, keepSlash)
}
