package driver

// unreserved marks the bytes RFC 3986 leaves unencoded: A-Z a-z 0-9 - _ . ~
var unreserved = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// Unreserved reports whether c is one of the characters RFC 3986 leaves
// unencoded, which url.QueryEscape and url.PathEscape leave as they are too.
func Unreserved(c byte) bool { return unreserved[c] }

// AppendEscaped appends s to dst with every byte but the unreserved
// characters of RFC 3986 (and "/" when keepSlash) percent-encoded with
// upper-case hex digits: the encoding S3, GCS and Azure sign and decode
// keys and query values with. It is on the signing path: keep it cheap.
func AppendEscaped(dst []byte, s string, keepSlash bool) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved[c] || c == '/' && keepSlash {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}
