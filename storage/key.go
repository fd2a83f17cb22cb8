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
// Percent signs are ordinary characters: "%2e%2e/x" is the literal name
// "%2e%2e/x" and is valid. Keys are never percent-decoded; drivers escape
// "%" (as "%25") when they put a key into a URL path, so no store can decode
// such a key into a traversal.
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
	return ""
}
