package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/atomicfile"
)

// CheckpointTag opens the message a checkpoint's signature covers.
const CheckpointTag = "signet.audit.checkpoint.v1"

// CheckpointVersion is the Version of the checkpoints this package writes.
const CheckpointVersion = 1

// Checkpoint is a signed statement that the audit log's entry Seq had hash
// Hash at Time (and so, through the chain, what every entry before it
// held). Kept outside signet's control, it shows later whether the log
// was rewritten up to Seq, cut short, or replaced by an older copy.
type Checkpoint struct {
	Version int              `json:"version"`
	Seq     int64            `json:"seq"` // 0 for an empty log
	Hash    signet.AuditHash `json:"hash"`
	Time    time.Time        `json:"time"`
	// KeyID names the public key that verifies Signature (see KeyID).
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of the checkpoint's message.
	Signature []byte `json:"signature"`
}

// message returns what the signature covers: CheckpointTag, Seq, Hash and
// Time, each written as Encode writes fields.
func (cp *Checkpoint) message() []byte {
	b := appendField(nil, CheckpointTag)
	b = appendSeq(b, cp.Seq)
	b = appendField(b, cp.Hash[:])
	return appendTime(b, cp.Time)
}

// Sign returns the checkpoint of head at t, signed with key. t is kept in
// UTC to the microsecond.
func Sign(key ed25519.PrivateKey, head signet.AuditHead, t time.Time) *Checkpoint {
	cp := &Checkpoint{
		Version: CheckpointVersion,
		Seq:     head.Seq,
		Hash:    head.Hash,
		Time:    t.UTC().Truncate(time.Microsecond),
		KeyID:   KeyID(key.Public().(ed25519.PublicKey)),
	}
	cp.Signature = ed25519.Sign(key, cp.message())
	return cp
}

// Head returns the log head the checkpoint attests.
func (cp *Checkpoint) Head() signet.AuditHead { return signet.AuditHead{Seq: cp.Seq, Hash: cp.Hash} }

// Verify returns nil if cp is a well-formed checkpoint signed with the
// private key of pub.
func (cp *Checkpoint) Verify(pub ed25519.PublicKey) error {
	switch {
	case cp.Version != CheckpointVersion:
		return fmt.Errorf("checkpoint version %d is not supported (want %d)", cp.Version, CheckpointVersion)
	case len(pub) != ed25519.PublicKeySize:
		return errors.New("checkpoint public key is not an Ed25519 key")
	case cp.Seq < 0:
		return fmt.Errorf("checkpoint seq %d is negative", cp.Seq)
	case cp.KeyID != KeyID(pub):
		return fmt.Errorf("checkpoint was signed with key %s, not with key %s", cp.KeyID, KeyID(pub))
	case !ed25519.Verify(pub, cp.message(), cp.Signature):
		return errors.New("checkpoint signature is not valid: the checkpoint was altered or forged")
	}
	return nil
}

// KeyID returns a short, public name for an Ed25519 public key: the first
// 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// checkpointPrefix and checkpointSuffix frame checkpoint file names:
// checkpoint-<seq, 20 digits>-<time>.json, so that names sort by Seq, then
// time.
const (
	checkpointPrefix = "checkpoint-"
	checkpointSuffix = ".json"
	fileTimeLayout   = "20060102T150405.000000Z"
)

// FileName returns the name WriteCheckpoint gives cp's file.
func (cp *Checkpoint) FileName() string {
	return fmt.Sprintf("%s%020d-%s%s", checkpointPrefix, cp.Seq, cp.Time.UTC().Format(fileTimeLayout), checkpointSuffix)
}

// WriteCheckpoint writes cp as JSON into dir, creating dir if needed, and
// returns the file's path. The file appears whole or not at all: it is
// written under a temporary name, synced and renamed.
func WriteCheckpoint(dir string, cp *Checkpoint) (string, error) {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint directory: %w", err)
	}
	path := filepath.Join(dir, cp.FileName())
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing checkpoint: %w", err)
	}
	return path, nil
}

// ReadCheckpoint reads a checkpoint file. It does not check the
// signature; call Verify.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cp Checkpoint
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil {
		return nil, fmt.Errorf("%s is not a checkpoint: %w", path, err)
	}
	return &cp, nil
}

// LatestCheckpoint returns the checkpoint in dir with the highest Seq, and
// the latest Time among those, that pub verifies, and its path. Files that
// cannot be read or do not verify are skipped; skipped counts them. It
// returns a nil checkpoint if there is none, also when dir does not exist.
func LatestCheckpoint(dir string, pub ed25519.PublicKey) (cp *Checkpoint, path string, skipped int, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", 0, nil
	}
	if err != nil {
		return nil, "", 0, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, checkpointPrefix) && strings.HasSuffix(n, checkpointSuffix) {
			names = append(names, n)
		}
	}
	// Names sort by Seq, then time; a name may lie, so the winner is
	// chosen by content.
	slices.Sort(names)
	for _, n := range slices.Backward(names) {
		p := filepath.Join(dir, n)
		c, err := ReadCheckpoint(p)
		if err != nil || c.Verify(pub) != nil {
			skipped++
			continue
		}
		if cp == nil || c.Seq > cp.Seq || c.Seq == cp.Seq && c.Time.After(cp.Time) {
			cp, path = c, p
		}
	}
	return cp, path, skipped, nil
}

// Keys. Checkpoint keys are stored in PEM: the private key as PKCS #8
// ("PRIVATE KEY"), the public key as PKIX ("PUBLIC KEY"), as OpenSSL
// writes them.

// LoadOrCreateKey reads the Ed25519 private key at path, or, if there is
// no file there, generates one and writes it with mode 0600 (never over a
// file that appears meanwhile: then that one is read). created reports
// that the key was generated. The key must be kept outside the database
// and away from whoever can write to it.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = ReadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	_, key, err = ed25519.GenerateKey(nil)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("checkpoint key: %w", err)
	}
	// Create fails if path exists: a concurrent start wrote its key first.
	if err := atomicfile.Create(path, data, 0o600); errors.Is(err, fs.ErrExist) {
		key, err = ReadKey(path)
		return key, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("checkpoint key: %w", err)
	}
	return key, true, nil
}

// ReadKey reads an Ed25519 private key from a PEM file ("PRIVATE KEY",
// PKCS #8). The error wraps fs.ErrNotExist if there is no file.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// ReadPublicKey reads an Ed25519 public key from a PEM file: a "PUBLIC
// KEY" (PKIX), as MarshalPublicKey writes, or a private key file, whose
// public half it returns.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM key", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, k)
		}
		return pub, nil
	case "PRIVATE KEY":
		key, err := ReadKey(path)
		if err != nil {
			return nil, err
		}
		return key.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("%s holds a PEM %s, not a key", path, blk.Type)
}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("auditlog: marshalling an Ed25519 public key: %v", err)) // cannot happen
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
