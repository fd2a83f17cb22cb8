package postgres

import (
	"strings"
	"unicode/utf8"
)

// storable reports whether PostgreSQL can hold s in a text column: valid
// UTF-8 without NUL characters. SQLite takes any bytes; this store refuses
// what PostgreSQL cannot keep (a name that cannot be stored cannot be
// found either), except in the audit log, which escapes it.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// escapeText encodes s for a text column of audit_events. The audit log
// records what clients sent, refused keys and names included, and must
// keep every byte of it: a backslash becomes `\\`, a NUL `\x00` and each
// byte that is not part of valid UTF-8 `\xHH`. Everything else is kept, so
// the stored text of ordinary values is the value itself. The encoding is
// injective, so an equality filter on an escaped value matches exactly the
// events whose field equals it.
func escapeText(s string) string {
	if storable(s) && strings.IndexByte(s, '\\') < 0 {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == 0 || r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unescapeText decodes what escapeText encoded. Text it could not have
// produced (a stray backslash, written by hand) is kept as it is.
func unescapeText(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			if s[i+1] == '\\' {
				b.WriteByte('\\')
				i++
				continue
			}
			if s[i+1] == 'x' && i+3 < len(s) {
				hi, ok1 := unhex(s[i+2])
				lo, ok2 := unhex(s[i+3])
				if ok1 && ok2 {
					b.WriteByte(hi<<4 | lo)
					i += 3
					continue
				}
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
