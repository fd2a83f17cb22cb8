// Package storage is the portable layer between signet and its blob stores.
// It does every check once, before a driver is called: object key rules,
// the team's bucket and prefix, expiry limits, methods, upload bindings,
// part numbers and the backend's capabilities. Drivers (package
// storage/driver) then only sign and talk to their store.
//
// A Bucket addresses exactly one connector's bucket and prefix. Every key a
// caller passes to it is relative to the team's space; no argument can
// choose another bucket or escape the prefix.
package storage

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// Limits on values that are signed into URLs.
const (
	maxContentTypeLen = 256
	maxGrantIDLen     = 128
	maxUploadIDLen    = 1024
)

// Bucket is a team's view of its connector's bucket: keys are relative to
// the connector's prefix. It is safe for concurrent use.
type Bucket struct {
	backend driver.Backend
	name    string // backend name, for messages
	bucket  string
	prefix  string
	err     error // why the connector is unusable, returned by every method
}

// Open returns a Bucket that signs with b for connector c. A connector
// without a bucket or with an invalid prefix (see ValidatePrefix) yields a
// Bucket whose every method returns an Invalid error, so the problem is
// reported where it is used.
func Open(b driver.Backend, c *signet.Connector) *Bucket {
	const op = "storage.Open"
	bk := &Bucket{backend: b}
	switch {
	case c == nil:
		bk.err = errorf(op, signet.Invalid, "no storage connector")
		return bk
	case b == nil:
		bk.err = errorf(op, signet.Invalid, "no driver for backend %q", c.Backend)
	case c.Bucket == "":
		bk.err = errorf(op, signet.Invalid, "connector has no bucket")
	default:
		bk.err = ValidatePrefix(c.Prefix)
	}
	bk.name, bk.bucket, bk.prefix = c.Backend, c.Bucket, c.Prefix
	return bk
}

// StoreKey returns the full key of key in the bucket (the prefix applied),
// as recorded in audit events. It does not validate key.
func (b *Bucket) StoreKey(key string) string { return b.prefix + key }

// fullKey validates key and returns it with the prefix applied.
func (b *Bucket) fullKey(key string) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	full := b.prefix + key
	if len(full) > MaxKeyLen {
		return "", errorf("storage.ValidateKey", signet.InvalidKey,
			"invalid key: with the team's prefix it is %d bytes long; at most %d bytes are allowed", len(full), MaxKeyLen)
	}
	return full, nil
}

// SignedURL returns a URL for key, which is relative to the team's space.
// The caller fills opts' Method, Now, Expires, bindings, ClientPrefix,
// GrantID and, for a part, UploadID and PartNumber; SignedURL sets Bucket
// and Key itself (opts is not modified). It checks, with these codes:
//
//   - InvalidKey: key breaks a rule of ValidateKey, or is too long with the
//     prefix;
//   - Invalid: the method is not GET, HEAD or PUT; Now is zero; a binding
//     (ContentType, Size >= 0, SHA256) is set for a method other than PUT;
//     Size < -1; SHA256 is not 32 bytes; ContentType is not a valid media
//     type of printable ASCII; GrantID is not made of [A-Za-z0-9._~-];
//   - InvalidExpiry: Expires is not after Now, is more than
//     signet.MaxExpiry after it, or is not a whole second;
//   - InvalidPart: PartNumber without UploadID, a part number outside
//     1..MaxParts, a part URL for a method other than PUT, or a malformed
//     UploadID.
//
// Size is a binding too: set it to -1 unless the upload must be exactly
// that many bytes (the zero value binds an empty body, and is refused for
// GET and HEAD). ClientPrefix is masked to its network. Other errors come from the driver
// (for example Unimplemented when it cannot enforce a binding).
func (b *Bucket) SignedURL(ctx context.Context, key string, opts *driver.SignOptions) (*driver.SignedURL, error) {
	const op = "storage.SignedURL"
	full, err := b.fullKey(key)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		return nil, errorf(op, signet.Invalid, "no signing options")
	}
	o := *opts
	o.Bucket, o.Key = b.bucket, full
	if o.ClientPrefix.IsValid() {
		o.ClientPrefix = o.ClientPrefix.Masked()
	}
	if err := checkSignOptions(op, &o); err != nil {
		return nil, err
	}
	return b.backend.SignedURL(ctx, &o)
}

func checkSignOptions(op string, o *driver.SignOptions) error {
	switch o.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return errorf(op, signet.Invalid, "method must be GET, HEAD or PUT")
	}
	switch {
	case o.Now.IsZero():
		return errorf(op, signet.Invalid, "no issue time")
	case !o.Expires.After(o.Now):
		return errorf(op, signet.InvalidExpiry, "expiry must be after the issue time")
	case o.Expires.Sub(o.Now) > signet.MaxExpiry:
		return errorf(op, signet.InvalidExpiry, "expiry must be at most %s after the issue time", signet.MaxExpiry)
	case !o.Expires.Equal(o.Expires.Truncate(time.Second)):
		return errorf(op, signet.InvalidExpiry, "expiry must be a whole second")
	case o.Size < -1:
		return errorf(op, signet.Invalid, "size must be -1 (unbound) or at least 0")
	case o.SHA256 != nil && len(o.SHA256) != 32:
		return errorf(op, signet.Invalid, "sha256 must be 32 bytes")
	case o.Method != http.MethodPut && (o.ContentType != "" || o.Size >= 0 || o.SHA256 != nil):
		return errorf(op, signet.Invalid, "size, content type and sha256 bindings apply to PUT only (use size -1 when unbound)")
	}
	if o.ContentType != "" {
		if err := checkContentType(op, o.ContentType); err != nil {
			return err
		}
	}
	if len(o.GrantID) > maxGrantIDLen || !IsToken(o.GrantID) {
		return errorf(op, signet.Invalid, "grant id must be at most %d characters of [A-Za-z0-9._~-]", maxGrantIDLen)
	}
	if o.UploadID == "" && o.PartNumber == 0 {
		return nil
	}
	switch {
	case o.UploadID == "":
		return errorf(op, signet.InvalidPart, "part number without an upload id")
	case o.PartNumber < 1 || o.PartNumber > MaxParts:
		return errorf(op, signet.InvalidPart, "part number must be between 1 and %d", MaxParts)
	case o.Method != http.MethodPut:
		return errorf(op, signet.InvalidPart, "part URLs are for PUT only")
	}
	return checkUploadID(op, o.UploadID)
}

// ValidateContentType reports whether ct may be bound to an upload: a media
// type with a subtype, such as "text/plain; charset=utf-8", of at most 256
// printable ASCII characters. The error is a *signet.Error with code
// signet.Invalid.
func ValidateContentType(ct string) error {
	return checkContentType("storage.ValidateContentType", ct)
}

func checkContentType(op, ct string) error {
	if len(ct) > maxContentTypeLen || !isPrintableASCII(ct) {
		return errorf(op, signet.Invalid, "content type must be at most %d printable ASCII characters", maxContentTypeLen)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if typ, sub, ok := strings.Cut(mt, "/"); err != nil || !ok || typ == "" || sub == "" {
		return errorf(op, signet.Invalid, "content type must be a media type such as text/plain")
	}
	return nil
}

func checkUploadID(op, id string) error {
	if id == "" || len(id) > maxUploadIDLen || !isPrintableASCII(id) {
		return errorf(op, signet.InvalidPart, "malformed upload id")
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// IsToken reports whether s is made only of URL-safe unreserved characters
// (A-Z a-z 0-9 . _ ~ -), as grant ids and key ids must be.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	return true
}

// multipart returns the backend's Multipart capability or Unimplemented.
func (b *Bucket) multipart(op string) (driver.Multipart, error) {
	if b.err != nil {
		return nil, b.err
	}
	mp, ok := b.backend.(driver.Multipart)
	if !ok {
		return nil, errorf(op, signet.Unimplemented, "backend %s does not support chunked uploads", b.name)
	}
	return mp, nil
}

// CreateMultipart starts a chunked upload of key and returns the store's
// upload id. opts.PartSize must be the part size PlanParts returns for
// opts.Size and itself. Codes: Unimplemented when the backend has no
// multipart support; InvalidKey; Invalid for bad options (content type,
// sha256 length, part plan); TooLarge above MaxObjectSize; otherwise the
// driver's.
func (b *Bucket) CreateMultipart(ctx context.Context, key string, opts *driver.MultipartOptions) (string, error) {
	const op = "storage.CreateMultipart"
	mp, err := b.multipart(op)
	if err != nil {
		return "", err
	}
	full, err := b.fullKey(key)
	if err != nil {
		return "", err
	}
	if opts == nil {
		return "", errorf(op, signet.Invalid, "no upload options")
	}
	o := *opts
	ps, _, err := PlanParts(o.Size, o.PartSize)
	switch {
	case err != nil:
		return "", err
	case ps != o.PartSize:
		return "", errorf(op, signet.Invalid, "part size %d does not fit an object of %d bytes", o.PartSize, o.Size)
	case o.SHA256 != nil && len(o.SHA256) != 32:
		return "", errorf(op, signet.Invalid, "sha256 must be 32 bytes")
	}
	if o.ContentType != "" {
		if err := checkContentType(op, o.ContentType); err != nil {
			return "", err
		}
	}
	return mp.CreateMultipart(ctx, b.bucket, full, &o)
}

// ListParts returns the parts the store holds for the upload, in ascending
// number order, so a client can resume. Codes: Unimplemented; InvalidKey;
// InvalidPart for a malformed upload id; NotFound when the store has no such
// upload for key.
func (b *Bucket) ListParts(ctx context.Context, key, uploadID string) ([]driver.Part, error) {
	const op = "storage.ListParts"
	mp, full, err := b.upload(op, key, uploadID)
	if err != nil {
		return nil, err
	}
	return mp.ListParts(ctx, b.bucket, full, uploadID)
}

// CompleteMultipart assembles parts, which must be numbered 1..N in
// ascending order, into the object. When sha256 is not nil the object must
// match it. Codes: Unimplemented; InvalidKey; InvalidPart for bad part
// numbers or upload id; Invalid for a bad sha256 length, or from the driver
// when a part is missing or an ETag or size does not match;
// ChecksumMismatch; NotFound.
func (b *Bucket) CompleteMultipart(ctx context.Context, key, uploadID string, parts []driver.Part, sha256 []byte) error {
	const op = "storage.CompleteMultipart"
	mp, full, err := b.upload(op, key, uploadID)
	if err != nil {
		return err
	}
	if len(parts) == 0 || len(parts) > MaxParts {
		return errorf(op, signet.InvalidPart, "an upload has 1 to %d parts", MaxParts)
	}
	for i, p := range parts {
		if p.Number != i+1 {
			return errorf(op, signet.InvalidPart, "parts must be numbered 1 to %d in order", len(parts))
		}
	}
	if sha256 != nil && len(sha256) != 32 {
		return errorf(op, signet.Invalid, "sha256 must be 32 bytes")
	}
	return mp.CompleteMultipart(ctx, b.bucket, full, uploadID, parts, sha256)
}

// AbortMultipart discards the upload and the parts the store holds. Codes:
// Unimplemented; InvalidKey; InvalidPart for a malformed upload id;
// NotFound.
func (b *Bucket) AbortMultipart(ctx context.Context, key, uploadID string) error {
	const op = "storage.AbortMultipart"
	mp, full, err := b.upload(op, key, uploadID)
	if err != nil {
		return err
	}
	return mp.AbortMultipart(ctx, b.bucket, full, uploadID)
}

func (b *Bucket) upload(op, key, uploadID string) (driver.Multipart, string, error) {
	mp, err := b.multipart(op)
	if err != nil {
		return nil, "", err
	}
	full, err := b.fullKey(key)
	if err != nil {
		return nil, "", err
	}
	if err := checkUploadID(op, uploadID); err != nil {
		return nil, "", err
	}
	return mp, full, nil
}

func errorf(op string, code signet.Code, format string, args ...any) *signet.Error {
	return &signet.Error{Op: op, Code: code, Msg: fmt.Sprintf(format, args...)}
}
