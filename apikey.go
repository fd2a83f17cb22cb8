package signet

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"strings"
)

// API keys look like "sgt_<id>_<secret>": a recognisable prefix (so secret
// scanners can find leaked keys), a public id (16 base32 characters, 80
// bits) used to look the key up and to name it in audit records, and a
// secret of 256 bits. Only SHA-256(secret) is stored; a slow hash is not
// needed because the secret is uniformly random.
const apiKeyPrefix = "sgt_"

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const (
	keyIDLen     = 16
	keySecretLen = 52 // base32 of 32 bytes
)

// NewAPIKeyToken returns a new token, its id and the hash to store.
func NewAPIKeyToken() (token, id string, hash []byte) {
	idb := make([]byte, 10)
	sec := make([]byte, 32)
	rand.Read(idb)
	rand.Read(sec)
	id = keyEncoding.EncodeToString(idb)
	secret := keyEncoding.EncodeToString(sec)
	h := sha256.Sum256([]byte(secret))
	return apiKeyPrefix + id + "_" + secret, id, h[:]
}

// ParseAPIKeyToken splits a token into its id and the hash of its secret.
// ok is false for anything malformed.
func ParseAPIKeyToken(token string) (id string, hash []byte, ok bool) {
	rest, found := strings.CutPrefix(token, apiKeyPrefix)
	if !found || len(rest) != keyIDLen+1+keySecretLen || rest[keyIDLen] != '_' {
		return "", nil, false
	}
	id, secret := rest[:keyIDLen], rest[keyIDLen+1:]
	if !validKeyChars(id) || !validKeyChars(secret) {
		return "", nil, false
	}
	h := sha256.Sum256([]byte(secret))
	return id, h[:], true
}

func validKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Matches reports in constant time whether hash matches the stored key.
func (k *APIKey) Matches(hash []byte) bool {
	return subtle.ConstantTimeCompare(k.Hash, hash) == 1
}

// NewID returns a random identifier of n bytes of entropy, in lower-case
// base32, for grants, uploads and requests.
func NewID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return keyEncoding.EncodeToString(b)
}
