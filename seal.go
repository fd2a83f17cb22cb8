package signet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Credential is a store credential kept by signet on a connector's behalf,
// sealed with the server's secret key: the database alone never reveals it.
type Credential struct {
	Ref       string // referenced by Connector.CredentialsRef
	Team      string
	Sealed    []byte // Sealer.Seal of the secret material
	CreatedAt time.Time
}

// Sealer encrypts secrets at rest with AES-256-GCM under the server's
// secret key. Each sealed value is bound to its context (the credential's
// reference and team) as additional data, so a sealed value copied to
// another row does not open.
type Sealer struct {
	aead cipher.AEAD
	kid  string
}

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// NewSealer returns a Sealer for a 32-byte key. Invalid for any other size.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, Errorf(Invalid, "the secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, E("seal", Internal, "", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, E("seal", Internal, "", err)
	}
	sum := sha256.Sum256(key)
	return &Sealer{aead: aead, kid: hex.EncodeToString(sum[:4])}, nil
}

// KeyID names the key without revealing it (the first bytes of its
// SHA-256), so operators can tell which key sealed what.
func (s *Sealer) KeyID() string { return s.kid }

// Seal encrypts plaintext bound to context.
func (s *Sealer) Seal(plaintext []byte, context string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(context))
}

// Open decrypts a value sealed for context. It returns Unavailable (the
// server holds the wrong key, or the value was altered) without detail.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, Errorf(Unavailable, "stored credential is malformed")
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(context))
	if err != nil {
		return nil, Errorf(Unavailable, "stored credential does not open with this server's secret key")
	}
	return pt, nil
}
