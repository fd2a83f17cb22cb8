package signet_test

import (
	"bytes"
	"testing"

	"github.com/signetdev/signet"
)

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := signet.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`)
	sealed := s.Seal(secret, "ml-s3/ml")
	if bytes.Contains(sealed, secret[:20]) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, err := s.Open(sealed, "ml-s3/ml"); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Open = %q, %v", got, err)
	}
	if bytes.Equal(s.Seal(secret, "ml-s3/ml"), sealed) {
		t.Error("two seals of the same value are equal (nonce reuse)")
	}
	other, _ := signet.NewSealer(bytes.Repeat([]byte{8}, 32))
	tampered := append([]byte{}, sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other context": func() ([]byte, error) { return s.Open(sealed, "cv-s3/cv") },
		"other key":     func() ([]byte, error) { return other.Open(sealed, "ml-s3/ml") },
		"tampered":      func() ([]byte, error) { return s.Open(tampered, "ml-s3/ml") },
		"truncated":     func() ([]byte, error) { return s.Open(sealed[:10], "ml-s3/ml") },
	} {
		if _, err := open(); signet.ErrorCode(err) != signet.Unavailable {
			t.Errorf("%s: err = %v, want unavailable", name, err)
		}
	}
	if _, err := signet.NewSealer(key[:16]); signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("16-byte key: %v", err)
	}
	if s.KeyID() == other.KeyID() || len(s.KeyID()) != 8 {
		t.Errorf("key ids %q %q", s.KeyID(), other.KeyID())
	}
}
