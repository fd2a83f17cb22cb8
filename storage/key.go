package storage

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/signetdev/signet"
)

// MaxKeyLen is the longest object key, in bytes, that any store accepts
// (S3's limit, which the others meet or exceed). It applies to the full key,
// the team prefix included.
const MaxKeyLen = 1024

// ValidateKey reports whether key may name an object. Keys are rejected,
// never rewritten: a key that is not already canonical is an error, so the
// name a client asks for is exactly the name that is signed and stored.
//
// A key must be 1 to MaxKeyLen bytes of valid UTF-8 without C0 or C1 control
// characters (U+0000–U+001F, U+007F–U+009F) or backslashes, and must be a
// relative slash-separated path whose segments are neither empty (no
// leading, trailing or doubled "/") nor "." or "..". A trailing "/" is
// refused because an object key names a file, not a directory.
//
// Keys are never percent-decoded for storage: "a%20b" and "100%" are the
// literal names "a%20b" and "100%", and drivers escape "%" (as "%25") when
// they put a key into a URL path. But a proxy or store on the way might
// decode a key anyway, once or more, so a key is also refused when
// percent-decoding it, repeatedly until it no longer changes, yields a "."
// or ".." segment, a backslash, a control character, "//" or a leading
// "/": "%2e%2e/x" and "%252e%252e/x" are refused like "../x".
//
// The error is a *signet.Error with code signet.InvalidKey whose message
// names the rule that was broken and is safe to show to users.
func ValidateKey(key string) error {
	if msg := keyProblem(key); msg != "" {
		return &signet.Error{Op: "storage.ValidateKey", Code: signet.InvalidKey, Msg: "invalid key: " + msg}
	}
	return nil
}

// ValidatePrefix reports whether p may be a connector's prefix: empty (the
// whole bucket), or a valid key followed by "/", such as "ml/" or
// "teams/a/". The error is a *signet.Error with code signet.Invalid.
func ValidatePrefix(p string) error {
	if p == "" {
		return nil
	}
	msg := ""
	if body, ok := strings.CutSuffix(p, "/"); !ok {
		msg = `prefix must end with "/"`
	} else {
		msg = keyProblem(body)
	}
	if msg != "" {
		return &signet.Error{Op: "storage.ValidatePrefix", Code: signet.Invalid, Msg: "invalid connector prefix: " + msg}
	}
	return nil
}

// keyProblem returns the rule key breaks, or "" if it is a valid key.
func keyProblem(key string) string {
	switch {
	case key == "":
		return "must not be empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("is %d bytes long; at most %d bytes are allowed", len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return "must be valid UTF-8"
	}
	for _, r := range key {
		switch {
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Sprintf("must not contain control characters (found %U)", r)
		case r == '\\':
			return `must not contain a backslash ("\")`
		}
	}
	switch {
	case key[0] == '/':
		return `must not start with "/"`
	case key[len(key)-1] == '/':
		return `must not end with "/"; an object key names a file`
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return `must not contain an empty segment ("//")`
		case ".", "..":
			return `must not contain a "." or ".." segment`
		}
	}
	// Each round that changes the key shortens it by at least two bytes,
	// so the loop ends after at most len(key)/3 rounds; the bound only
	// states that.
	decoded := key
	for range len(key)/3 + 1 {
		next := percentDecode(decoded)
		if next == decoded {
			break
		}
		decoded = next
		if msg := decodedProblem(decoded); msg != "" {
			return "must not percent-decode to " + msg + " (a proxy or store on the way might decode it)"
		}
	}
	return ""
}

// decodedProblem names what in a percent-decoded form of a key would let
// it address another name than its own, or returns "".
func decodedProblem(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "a control character"
		}
	}
	for _, r := range s {
		switch {
		case r >= 0x80 && r <= 0x9f:
			return "a control character"
		case r == '\\':
			return `a backslash ("\")`
		}
	}
	switch {
	case s[0] == '/':
		return `a leading "/"`
	case strings.Contains(s, "//"):
		return `an empty segment ("//")`
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "." || seg == ".." {
			return `a "." or ".." segment`
		}
	}
	return ""
}

// percentDecode replaces every "%XX" (two hexadecimal digits) in s by the
// byte it encodes and keeps every other "%" as it is, as lenient decoders
// do.
func percentDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
