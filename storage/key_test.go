package storage_test

import (
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
)

func TestValidateKey(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, key := range []string{
			"a",
			"a/b/c.txt",
			"100%",            // a percent sign is an ordinary character
			"a%20b",           // and "%XX" a literal name, never decoded
			"%2e%2ex/y",       // decodes to "..x/y", a safe name
			"a%2fb",           // decodes to "a/b"
			"%%2e%2e",         // decodes to "%..", one segment
			"%zz/%2",          // not percent sequences at all
			"%25%25",          // decodes to "%%", which stays
			"50%25/%e2%82%ac", // decodes to "50%/€"
			"..a/b..",
			".hidden/...",
			"a b/ü/日本語/🙂",
			"x\u00a0y",                       // U+00A0 is not a control character
			strings.Repeat("a", 1024),        // exactly the limit
			strings.Repeat("é", 512),         // 1024 bytes
			"models/llama-7b/shard-0001.bin", // realistic
		} {
			if err := storage.ValidateKey(key); err != nil {
				t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
			}
		}
	})
	t.Run("ErrInvalidKey", func(t *testing.T) {
		for _, tc := range []struct{ name, key string }{
			// BAD-INPUTS.md, Requests: traversal.
			{"DotDotPrefix", "../x"},
			{"DotDotMiddle", "a/../b"},
			{"DotMiddle", "a/./b"},
			{"DotDotOnly", ".."},
			{"DotOnly", "."},
			{"DotDotLast", "a/.."},
			{"DotLast", "a/."},
			// BAD-INPUTS.md, Requests: encoded traversal. The key is
			// never decoded, but a proxy or store on the way might.
			{"EncodedDotDot", "%2e%2e/x"},
			{"EncodedDotDotUpper", "%2E%2E/x"},
			{"DoubleEncodedDotDot", "%252e%252e/x"},
			{"TripleEncodedDotDot", "%25252e%25252e/x"},
			{"EncodedDotDotMiddle", "a/%2e%2e/b"},
			{"HalfEncodedDotDot", "a/.%2e/b"},
			{"EncodedDot", "a/%2e/b"},
			{"EncodedSlashDotDot", "a%2f..%2fb"},
			{"EncodedSlashes", "a/%2f/b"},
			{"EncodedLeadingSlash", "%2fetc/passwd"},
			{"DoubleEncodedLeadingSlash", "%252fetc"},
			{"EncodedBackslash", "a%5c..%5cb"},
			{"EncodedNUL", "a%00b"},
			{"DoubleEncodedNewline", "a%250ab"},
			{"EncodedDEL", "a%7fb"},
			{"EncodedC1", "a%c2%85b"},
			// non-canonical
			{"LeadingSlash", "/a"},
			{"DoubleSlash", "a//b"},
			{"Empty", ""},
			{"TrailingSlash", "a/"},
			{"SlashOnly", "/"},
			// control characters
			{"NUL", "a\x00b"},
			{"Newline", "a\nb"},
			{"CarriageReturn", "a\rb"},
			{"Tab", "a\tb"},
			{"Escape", "a\x1bb"},
			{"Unit31", "a\x1fb"},
			{"DEL", "a\x7fb"},
			{"NEL", "a\u0085b"},
			{"C1First", "a\u0080b"},
			{"C1Last", "a\u009fb"},
			// backslash
			{"Backslash", `a\..\b`},
			{"BackslashOnly", `\`},
			// length
			{"Length1025", strings.Repeat("a", 1025)},
			{"Length1025Multibyte", strings.Repeat("é", 512) + "a"},
			// invalid UTF-8
			{"InvalidUTF8", "\xff\xfe"},
			{"InvalidUTF8Inside", "a/\xffb"},
			{"Surrogate", "a\xed\xa0\x80b"},
			{"Overlong", "a\xc0\xafb"},
			{"Truncated", "a\xe6\x97"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := storage.ValidateKey(tc.key)
				if got := signet.ErrorCode(err); got != signet.InvalidKey {
					t.Fatalf("ValidateKey(%q) code %q (%v), want %q", tc.key, got, err, signet.InvalidKey)
				}
				msg := signet.ErrorMessage(err)
				if !strings.HasPrefix(msg, "invalid key: ") || !utf8.ValidString(msg) {
					t.Errorf("message %q does not name the rule safely", msg)
				}
				if strings.ContainsAny(msg, "\x00\n\r") {
					t.Errorf("message %q echoes control characters", msg)
				}
			})
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, p := range []string{"", "ml/", "teams/a/", "100%/", "a%20b/"} {
			if err := storage.ValidatePrefix(p); err != nil {
				t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, p := range []string{"/", "ml", "/ml/", "ml//", "../", "a/../", "a\\/", "a\x00/", "\xff/", "%2e%2e/", "a/%252e/", strings.Repeat("a", 1025) + "/", "./"} {
			if got := signet.ErrorCode(storage.ValidatePrefix(p)); got != signet.Invalid {
				t.Errorf("ValidatePrefix(%q) code %q, want %q", p, got, signet.Invalid)
			}
		}
	})
}

// FuzzValidateKey checks that every accepted key is canonical and cannot
// address anything but itself.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a/./b", "%2e%2e/x", "/a", "a//b", "a\\b", "a\x00", "\xff\xfe", "a\u0085", "ü/🙂", "..a", "a/", "%252e%252e/x", "a%2fb", "100%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := storage.ValidateKey(key)
		if err != nil {
			if signet.ErrorCode(err) != signet.InvalidKey {
				t.Fatalf("ValidateKey(%q) code %q", key, signet.ErrorCode(err))
			}
			return
		}
		switch {
		case key == "" || len(key) > storage.MaxKeyLen:
			t.Fatalf("accepted key of length %d", len(key))
		case !utf8.ValidString(key):
			t.Fatalf("accepted invalid UTF-8 %q", key)
		case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//"):
			t.Fatalf("accepted non-canonical %q", key)
		case strings.Contains(key, `\`):
			t.Fatalf("accepted backslash in %q", key)
		case path.Clean(key) != key:
			t.Fatalf("accepted %q, which path.Clean rewrites to %q", key, path.Clean(key))
		}
		for _, r := range key {
			if r < 0x20 || r >= 0x7f && r <= 0x9f {
				t.Fatalf("accepted control character %U in %q", r, key)
			}
		}
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted segment %q in %q", seg, key)
			}
		}
		// Nor can a proxy or store that percent-decodes it, however often,
		// turn it into a traversal.
		for d := key; strings.Contains(d, "%"); {
			next, err := url.PathUnescape(d)
			if err != nil || next == d {
				break
			}
			d = next
			if strings.HasPrefix(d, "/") || strings.Contains(d, "//") || strings.Contains(d, `\`) || strings.ContainsFunc(d, isControl) {
				t.Fatalf("accepted %q, which decodes to %q", key, d)
			}
			for seg := range strings.SplitSeq(d, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("accepted %q, which decodes to %q", key, d)
				}
			}
		}
		// A valid key is a valid prefix body, and joining keeps it valid.
		if err := storage.ValidatePrefix(key + "/"); err != nil {
			t.Fatalf("ValidatePrefix(%q/) = %v", key, err)
		}
	})
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }
