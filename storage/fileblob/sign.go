package fileblob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Query parameter names.
const (
	paramVersion = "v"
	paramKeyID   = "kid"
	paramMethod  = "method"
	paramExpires = "expires"
	paramSize    = "size"
	paramType    = "type"
	paramSHA256  = "sha256"
	paramIP      = "ip"
	paramUpload  = "upload"
	paramPart    = "part"
	paramGrant   = "grant"
	paramSig     = "sig"
)

const (
	urlVersion = "1"
	signTag    = "signet-blob-v1"
	maxParts   = storage.MaxParts
)

// sigEncoding is strict so that a signature has exactly one encoding.
var sigEncoding = base64.RawURLEncoding.Strict()

// claims are the values a URL is signed over.
type claims struct {
	KeyID   string
	Method  string
	Bucket  string
	Key     string
	Expires int64 // Unix seconds

	Size           int64 // -1 when unbound
	HasContentType bool
	ContentType    string
	SHA256         []byte       // nil when unbound
	ClientPrefix   netip.Prefix // invalid when unbound
	UploadID       string       // "" unless a part URL
	PartNumber     int          // 0 unless a part URL
	GrantID        string
}

// canonical returns the length-prefixed string that is signed.
func (c *claims) canonical() []byte {
	b := make([]byte, 0, 256+len(c.Key)+len(c.ContentType))
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	field(signTag)
	field(c.KeyID)
	field(c.Method)
	field(c.Bucket)
	field(c.Key)
	field(strconv.FormatInt(c.Expires, 10))
	field(optInt(c.Size >= 0, c.Size))
	if c.HasContentType {
		field("1")
	} else {
		field("0")
	}
	field(c.ContentType)
	field(hex.EncodeToString(c.SHA256))
	if c.ClientPrefix.IsValid() {
		field(c.ClientPrefix.String())
	} else {
		field("")
	}
	field(c.UploadID)
	field(optInt(c.PartNumber > 0, int64(c.PartNumber)))
	field(c.GrantID)
	return b
}

func optInt(set bool, n int64) string {
	if !set {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// mac returns the signature of c under secret.
func (c *claims) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(c.canonical())
	return m.Sum(nil)
}

// query returns the URL query carrying c and its signature: what
// url.Values.Encode makes of them (parameters sorted by name, values
// query-escaped), built directly, since every signed URL pays for it.
// TestQueryEncoding holds it to url.Values.
func (c *claims) query(sig []byte) string {
	b := make([]byte, 0, 160+len(c.GrantID)+3*len(c.ContentType))
	param := func(name, value string) {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = append(b, name...)
		b = append(b, '=')
		b = appendQueryEscape(b, value)
	}
	// In the order of the names, as url.Values.Encode sorts them.
	param(paramExpires, strconv.FormatInt(c.Expires, 10))
	if c.GrantID != "" {
		param(paramGrant, c.GrantID)
	}
	if c.ClientPrefix.IsValid() {
		param(paramIP, c.ClientPrefix.String())
	}
	param(paramKeyID, c.KeyID)
	param(paramMethod, c.Method)
	if c.UploadID != "" {
		param(paramPart, strconv.Itoa(c.PartNumber))
	}
	if c.SHA256 != nil {
		param(paramSHA256, hex.EncodeToString(c.SHA256))
	}
	param(paramSig, sigEncoding.EncodeToString(sig))
	if c.Size >= 0 {
		param(paramSize, strconv.FormatInt(c.Size, 10))
	}
	if c.HasContentType {
		param(paramType, c.ContentType)
	}
	if c.UploadID != "" {
		param(paramUpload, c.UploadID)
	}
	param(paramVersion, urlVersion)
	return string(b)
}

// appendQueryEscape appends url.QueryEscape(s) to b, without allocating
// when s needs no escaping (ids, numbers, base64url, hex).
func appendQueryEscape(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !driver.Unreserved(s[i]) {
			return append(b, url.QueryEscape(s)...)
		}
	}
	return append(b, s...)
}

// objectURLPath returns the escaped path of an object below the base URL.
func objectURLPath(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/blob/" + bucket + "/" + strings.Join(segs, "/")
}

// parseQuery parses the query of a signed URL strictly: every value must be
// in the one form query produces. It returns the claims (without Bucket and
// Key, which come from the path) and the signature, or a user-safe reason.
func parseQuery(raw string) (*claims, []byte, string) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, nil, "malformed query"
	}
	get := func(name string) (string, bool) {
		v, ok := q[name]
		if !ok {
			return "", false
		}
		return v[0], true
	}
	for name, v := range q {
		if len(v) != 1 {
			return nil, nil, "repeated query parameter"
		}
		switch name {
		case paramVersion, paramKeyID, paramMethod, paramExpires, paramSize, paramType,
			paramSHA256, paramIP, paramUpload, paramPart, paramGrant, paramSig:
		default:
			return nil, nil, "unknown query parameter"
		}
	}
	c := &claims{Size: -1}
	if v, _ := get(paramVersion); v != urlVersion {
		return nil, nil, "unsupported URL version"
	}
	c.KeyID, _ = get(paramKeyID)
	if !validKeyID(c.KeyID) {
		return nil, nil, "malformed key id"
	}
	c.Method, _ = get(paramMethod)
	switch c.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return nil, nil, "malformed method"
	}
	var ok bool
	if c.Expires, ok = canonicalInt(get(paramExpires)); !ok || c.Expires < 1 {
		return nil, nil, "malformed expiry"
	}
	if v, set := get(paramSize); set {
		if c.Size, ok = canonicalInt(v, true); !ok {
			return nil, nil, "malformed size"
		}
	}
	c.ContentType, c.HasContentType = get(paramType)
	if v, set := get(paramSHA256); set {
		c.SHA256, err = hex.DecodeString(v)
		if err != nil || len(c.SHA256) != sha256.Size || hex.EncodeToString(c.SHA256) != v {
			return nil, nil, "malformed sha256"
		}
	}
	if v, set := get(paramIP); set {
		c.ClientPrefix, err = netip.ParsePrefix(v)
		if err != nil || c.ClientPrefix.String() != v || c.ClientPrefix != c.ClientPrefix.Masked() {
			return nil, nil, "malformed client network"
		}
	}
	up, upSet := get(paramUpload)
	part, partSet := get(paramPart)
	if upSet || partSet {
		n, ok := canonicalInt(part, partSet)
		if !upSet || !validUploadID(up) || !ok || n < 1 || n > maxParts {
			return nil, nil, "malformed upload or part number"
		}
		c.UploadID, c.PartNumber = up, int(n)
	}
	c.GrantID, _ = get(paramGrant)
	if len(c.GrantID) > 128 || !storage.IsToken(c.GrantID) {
		return nil, nil, "malformed grant id"
	}
	s, _ := get(paramSig)
	sig, err := sigEncoding.DecodeString(s)
	if err != nil || len(sig) != sha256.Size {
		return nil, nil, "malformed signature"
	}
	return c, sig, ""
}

// canonicalInt parses a non-negative decimal without sign or leading zeros.
// ok is false when the value is absent (set false) or not in that form.
func canonicalInt(s string, set bool) (int64, bool) {
	if !set || s == "" || len(s) > 19 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// normalizePrefix returns p masked, with an IPv4-mapped IPv6 prefix written
// as the IPv4 prefix it covers.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// prefixContains reports whether client ip is in p. IPv4 clients seen as
// IPv4-mapped IPv6 addresses are compared as IPv4, and an IPv6 prefix
// covering the IPv4-mapped space (such as ::/0) contains IPv4 clients.
func prefixContains(p netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	if p.Contains(ip) {
		return true
	}
	return ip.Is4() && p.Addr().Is6() && p.Contains(netip.AddrFrom16(ip.As16()))
}

// validKeyID reports whether id may name a signing key.
func validKeyID(id string) bool {
	return id != "" && len(id) <= 64 && storage.IsToken(id)
}
