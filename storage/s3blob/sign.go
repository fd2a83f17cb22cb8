package s3blob

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet/storage/driver"
)

// This file is signet's own AWS Signature Version 4 query presigner: the
// hot path of every S3 URL. It follows the S3 rules, not the generic
// SigV4 ones: the canonical URI is the path encoded once (never normalized,
// never double-encoded), and every byte outside A-Za-z0-9-_.~ is
// percent-encoded ("$" becomes "%24"; "/" is kept in paths only). It is
// checked byte for byte against the aws-c-auth SigV4 suite, the S3
// documentation's example and aws-sdk-go-v2's s3.PresignClient (see
// sign_test.go).

const (
	algorithm       = "AWS4-HMAC-SHA256"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// maxPresignSeconds is SigV4's limit on X-Amz-Expires (7 days).
	maxPresignSeconds = 7 * 24 * 60 * 60
)

// param is a query parameter or a header: a name and its value, not
// encoded.
type param struct{ name, value string }

// presignInput is one request to presign.
type presignInput struct {
	method string
	// host is the Host header the client will send: the URL's host,
	// with the port when it is not the scheme's default.
	host string
	// path is the canonical URI, already encoded (see appendPathEscaped).
	// It is used as it is: S3 URIs are neither normalized nor encoded twice.
	path []byte
	// query holds parameters to sign besides the X-Amz-* ones, in any order.
	query []param
	// headers holds the headers to sign besides host: lower-case names,
	// values as the client sends them (canonicalized here), in any order.
	// Repeated names are joined with "," in the order given.
	headers []param
	// payloadHash is the last line of the canonical request; S3 presigned
	// URLs use UNSIGNED-PAYLOAD.
	payloadHash string

	region, service string
	accessKeyID     string
	secret          string
	sessionToken    string
	// tokenAfterSigning adds X-Amz-Security-Token to the URL without
	// signing it (some services want that; S3 signs it: keep this false).
	tokenAfterSigning bool

	time    time.Time // X-Amz-Date
	expires int64     // X-Amz-Expires, seconds
}

// presigned holds a presigner's intermediate steps, for tests that show
// which step differs.
type presigned struct {
	canonicalRequest string
	stringToSign     string
	signature        string
}

// signer presigns SigV4 requests, caching the derived signing key and
// the last X-Amz-Date.
type signer struct {
	keys  keyCache
	dates atomic.Pointer[amzDate]
}

// amzDate is a time in Unix seconds and as SigV4 writes it.
type amzDate struct {
	sec  int64
	text [16]byte // 20060102T150405Z
}

// date returns sec as an amzDate, from the cache when it is the last one.
func (s *signer) date(sec int64) *amzDate {
	if d := s.dates.Load(); d != nil && d.sec == sec {
		return d
	}
	d := &amzDate{sec: sec}
	appendAmzDate(d.text[:0], sec)
	s.dates.Store(d)
	return d
}

// bufPool holds scratch buffers for canonical requests.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxParams bounds the query parameters and headers of one request, so
// the signer's bookkeeping stays on the stack. signet signs at most 6
// headers and 9 query parameters.
const maxParams = 24

// appendPresigned appends to dst the URL query that presigns in: the
// canonical query string, then X-Amz-Signature. When debug is not nil it
// receives the canonical request and string to sign (tests only).
func (s *signer) appendPresigned(dst []byte, in *presignInput, debug *presigned) []byte {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]

	xAmzDate := s.date(in.time.Unix()).text[:]
	day := xAmzDate[:8]
	key := s.keys.get(in.accessKeyID, in.secret, day, in.region, in.service)

	// Signed headers, host included, sorted by name (stable, so repeated
	// names keep their order).
	// (A fixed array, never grown by append, so that nothing of in
	// escapes to the heap.)
	if len(in.headers) >= maxParams || len(in.query)+6 > maxParams {
		panic("s3blob: too many headers or query parameters to sign")
	}
	var hbuf [maxParams]param
	hbuf[0] = param{"host", in.host}
	copy(hbuf[1:], in.headers)
	hdrs := hbuf[:1+len(in.headers)]
	for i := 1; i < len(hdrs); i++ {
		for j := i; j > 0 && hdrs[j].name < hdrs[j-1].name; j-- {
			hdrs[j], hdrs[j-1] = hdrs[j-1], hdrs[j]
		}
	}

	// The query: X-Amz-* parameters and the caller's, encoded into the
	// scratch buffer, then sorted by encoded name and value.
	var qbuf [maxParams]qparam
	qs := qbuf[:0]
	start := len(b)
	b = append(b, "X-Amz-Algorithm"...)
	mid := len(b)
	b = append(b, algorithm...)
	qs = append(qs, qparam{start, mid, len(b)})

	start = len(b)
	b = append(b, "X-Amz-Credential"...)
	mid = len(b)
	b = append(b, key.credential...)
	qs = append(qs, qparam{start, mid, len(b)})

	start = len(b)
	b = append(b, "X-Amz-Date"...)
	mid = len(b)
	b = append(b, xAmzDate...)
	qs = append(qs, qparam{start, mid, len(b)})

	start = len(b)
	b = append(b, "X-Amz-Expires"...)
	mid = len(b)
	b = strconv.AppendInt(b, in.expires, 10)
	qs = append(qs, qparam{start, mid, len(b)})

	if in.sessionToken != "" && !in.tokenAfterSigning {
		start = len(b)
		b = append(b, "X-Amz-Security-Token"...)
		mid = len(b)
		b = appendEscaped(b, in.sessionToken, true)
		qs = append(qs, qparam{start, mid, len(b)})
	}

	start = len(b)
	b = append(b, "X-Amz-SignedHeaders"...)
	mid = len(b)
	for i, h := range hdrs {
		if i > 0 && h.name == hdrs[i-1].name {
			continue
		}
		if i > 0 {
			b = append(b, "%3B"...)
		}
		b = appendEscaped(b, h.name, true)
	}
	qs = append(qs, qparam{start, mid, len(b)})

	for _, p := range in.query {
		start = len(b)
		b = appendEscaped(b, p.name, true)
		mid = len(b)
		b = appendEscaped(b, p.value, true)
		qs = append(qs, qparam{start, mid, len(b)})
	}
	for i := 1; i < len(qs); i++ {
		for j := i; j > 0 && qs[j].less(b, qs[j-1]); j-- {
			qs[j], qs[j-1] = qs[j-1], qs[j]
		}
	}

	// Canonical request, after the scratch area.
	crStart := len(b)
	b = append(b, in.method...)
	b = append(b, '\n')
	b = append(b, in.path...)
	b = append(b, '\n')
	qStart := len(b)
	for i, q := range qs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, b[q.start:q.mid]...)
		b = append(b, '=')
		b = append(b, b[q.mid:q.end]...)
	}
	qEnd := len(b)
	b = append(b, '\n')
	for i, h := range hdrs {
		if i > 0 && h.name == hdrs[i-1].name {
			b[len(b)-1] = ',' // join repeated headers: "a:1,2"
		} else {
			b = append(b, h.name...)
			b = append(b, ':')
		}
		b = appendCanonicalValue(b, h.value)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, h := range hdrs {
		if i > 0 && h.name == hdrs[i-1].name {
			continue
		}
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h.name...)
	}
	b = append(b, '\n')
	b = append(b, in.payloadHash...)
	crHash := sha256.Sum256(b[crStart:])

	// String to sign.
	stsStart := len(b)
	b = append(b, algorithm+"\n"...)
	b = append(b, xAmzDate...)
	b = append(b, '\n')
	b = append(b, key.scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])

	mac := key.mac()
	mac.h.Write(b[stsStart:])
	var sig [2 * sha256.Size]byte
	hex.Encode(sig[:], mac.h.Sum(mac.sum[:0]))
	key.release(mac)

	// The URL's query: the canonical query, then the signature (and a
	// token the caller wants unsigned).
	dst = append(dst, b[qStart:qEnd]...)
	if in.tokenAfterSigning && in.sessionToken != "" {
		dst = append(dst, "&X-Amz-Security-Token="...)
		dst = appendEscaped(dst, in.sessionToken, true)
	}
	dst = append(dst, "&X-Amz-Signature="...)
	dst = append(dst, sig[:]...)
	if debug != nil {
		debug.canonicalRequest = string(b[crStart:stsStart])
		debug.stringToSign = string(b[stsStart:])
		debug.signature = string(sig[:])
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return dst
}

// appendAmzDate appends the UTC time of Unix seconds sec as SigV4 writes
// it, 20060102T150405Z. (From seconds, not a time.Time, so no pointer of
// the caller's input escapes and its parameter arrays stay on the stack.)
func appendAmzDate(b []byte, sec int64) []byte {
	t := time.Unix(sec, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendDigits(b, y, 4)
	b = appendDigits(b, int(mo), 2)
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = appendDigits(b, mi, 2)
	b = appendDigits(b, s, 2)
	return append(b, 'Z')
}

// appendDigits appends n (0 <= n < 10^width) in exactly width digits.
func appendDigits(b []byte, n, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-width; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// qparam locates one encoded query parameter in the scratch buffer: the
// name is buf[start:mid] and the value buf[mid:end].
type qparam struct{ start, mid, end int }

// less orders parameters by encoded name, then encoded value.
func (q qparam) less(buf []byte, r qparam) bool {
	if c := bytes.Compare(buf[q.start:q.mid], buf[r.start:r.mid]); c != 0 {
		return c < 0
	}
	return bytes.Compare(buf[q.mid:q.end], buf[r.mid:r.end]) < 0
}

// appendCanonicalValue appends a header value the SigV4 way: leading and
// trailing spaces removed, runs of spaces collapsed to one.
func appendCanonicalValue(b []byte, v string) []byte {
	v = strings.Trim(v, " ")
	if !strings.Contains(v, "  ") {
		return append(b, v...)
	}
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}

const upperHex = "0123456789ABCDEF"

// appendEscaped appends s with every byte but the unreserved ones
// percent-encoded with upper-case hex digits; "/" is kept unless
// encodeSlash.
func appendEscaped(b []byte, s string, encodeSlash bool) []byte {
	return driver.AppendEscaped(b, s, !encodeSlash)
}

// appendPathEscaped appends an S3 object path: s encoded once, "/" kept.
func appendPathEscaped(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// keyCache keeps the most recently derived signing key. The key is derived
// from the secret, the day, the region and the service, and the cache is
// keyed on all four (and the access key id, which the cached credential
// scope holds): a rotated secret under the same access key id never signs
// with the old key (aws-sdk-go-v2's cache is keyed on the access key id
// and the day only).
type keyCache struct {
	last atomic.Pointer[signingKey]
}

// signingKey is a derived SigV4 key with a pool of HMACs keyed with it,
// and the strings of the request that depend on the same inputs.
type signingKey struct {
	accessKeyID, secret, day, region, service string

	key        []byte
	credential []byte // X-Amz-Credential's value, encoded
	scope      []byte // day/region/service/aws4_request
	macs       sync.Pool
}

func (c *keyCache) get(accessKeyID, secret string, day []byte, region, service string) *signingKey {
	if k := c.last.Load(); k != nil && k.matches(accessKeyID, secret, day, region, service) {
		return k
	}
	// Copies, so the caller's strings do not escape through the cache.
	k := &signingKey{
		accessKeyID: strings.Clone(accessKeyID), secret: strings.Clone(secret), day: string(day),
		region: strings.Clone(region), service: strings.Clone(service),
	}
	k.key = deriveKey(k.secret, k.day, k.region, k.service)
	k.scope = []byte(k.day + "/" + k.region + "/" + k.service + "/aws4_request")
	k.credential = appendEscaped(nil, k.accessKeyID+"/"+string(k.scope), true)
	k.macs.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, k.key)} }
	c.last.Store(k)
	return k
}

func (k *signingKey) matches(accessKeyID, secret string, day []byte, region, service string) bool {
	return string(day) == k.day && region == k.region && service == k.service && accessKeyID == k.accessKeyID &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(k.secret)) == 1
}

// keyedMAC is an HMAC keyed with a signing key and room for its sum.
type keyedMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// mac returns a reset HMAC keyed with the signing key; release it after use.
func (k *signingKey) mac() *keyedMAC { return k.macs.Get().(*keyedMAC) }

func (k *signingKey) release(m *keyedMAC) {
	m.h.Reset()
	k.macs.Put(m)
}

// deriveKey computes SigV4's signing key for a day (YYYYMMDD).
func deriveKey(secret, day, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
