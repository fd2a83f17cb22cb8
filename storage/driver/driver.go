// Package driver defines the interface each blob store implements. The
// portable package storage does every check (key rules, team prefix, expiry
// limits, methods) once, before a driver is called, so drivers only sign and
// talk to their store. A driver that cannot enforce an option it is given
// returns a signet Unimplemented error instead of ignoring it.
//
// Drivers return *signet.Error values: NotFound, PermissionDenied, Invalid,
// Unimplemented, Unavailable or Internal, translated once from their SDK.
package driver

import (
	"context"
	"net/netip"
	"time"
)

// SignOptions describes one URL to sign. Key is the full key in the bucket
// (the team prefix already applied) and has been validated.
type SignOptions struct {
	Method  string    // "GET", "HEAD" or "PUT"
	Bucket  string    // the connector's bucket
	Key     string    // full object key in the bucket
	Now     time.Time // issue time
	Expires time.Time // the URL must stop working at this instant (whole seconds)

	// Upload bindings, for PUT only. A driver that cannot make the store
	// enforce a set binding returns Unimplemented.
	ContentType string // when non-empty, the upload must carry exactly this Content-Type
	Size        int64  // when >= 0, the body must be exactly this many bytes; -1 when unknown
	SHA256      []byte // when non-nil, the body's SHA-256 must match

	// ClientPrefix, when valid, restricts the URL to clients in this network.
	ClientPrefix netip.Prefix

	// GrantID is an opaque correlation id the driver carries in the URL
	// where the store allows, so store access logs join the audit log.
	GrantID string

	// UploadID and PartNumber, when UploadID is set, sign a URL for one part
	// of a multipart upload (PUT only).
	UploadID   string
	PartNumber int
}

// SignedURL is a pre-signed request. URL is a bearer secret: never log it.
type SignedURL struct {
	Method string
	URL    string
	// Headers the client must send with the request, exactly.
	Headers map[string]string
	// Expires is when the URL stops working: SignOptions.Expires, or
	// earlier when the store cannot honour it (for example when the
	// signing credentials expire first). Callers report this time, never a
	// later one. Every driver sets it.
	Expires time.Time
}

// Backend signs URLs for one store.
type Backend interface {
	// SignedURL returns a URL that lets its holder perform opts.Method on
	// opts.Key until opts.Expires and nothing else.
	SignedURL(ctx context.Context, opts *SignOptions) (*SignedURL, error)
}

// MultipartOptions describes a new multipart upload.
type MultipartOptions struct {
	ContentType string
	Size        int64  // total size, known in advance
	PartSize    int64  // every part but the last has exactly this size
	SHA256      []byte // declared checksum of the whole object, may be nil
}

// Part is one stored part of a multipart upload.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// Multipart is implemented by backends that support chunked uploads with one
// pre-signed URL per part (SignedURL with UploadID and PartNumber set).
type Multipart interface {
	// CreateMultipart starts an upload and returns the store's upload id.
	CreateMultipart(ctx context.Context, bucket, key string, opts *MultipartOptions) (uploadID string, err error)
	// ListParts returns the parts the store holds, in ascending number
	// order. NotFound when the upload does not exist.
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error)
	// CompleteMultipart assembles the listed parts into the object. It
	// returns Invalid when a part is missing or an ETag does not match, and
	// ChecksumMismatch (deleting the object) when sha256 is non-nil and the
	// object does not match it.
	CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []Part, sha256 []byte) error
	// AbortMultipart discards the upload and its parts. NotFound when the
	// upload does not exist.
	AbortMultipart(ctx context.Context, bucket, key, uploadID string) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key          string    // full key in the bucket
	Size         int64     // bytes
	LastModified time.Time // zero when the store does not say
	// ETag is the entity tag the store sends with the object (quotes
	// included), "" when it has none.
	ETag string
	// SHA256 is the whole object's SHA-256 when the store knows it (a
	// checksum the store verified, or the one signet recorded when it
	// completed a verified upload), else nil. A checksum of the parts'
	// checksums is not a whole-object SHA-256 and is never reported here.
	SHA256 []byte
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	// Prefix is the full key prefix (the connector's prefix included):
	// only keys that start with it are listed.
	Prefix string
	// Cursor is "" for the first page, else ListPage.Next of the page
	// before, from the same listing (same bucket and Prefix).
	Cursor string
	// Limit is the most objects the page may hold, 1 to 1000. A page may
	// hold fewer and still have a Next.
	Limit int
}

// ListPage is one page of a listing.
type ListPage struct {
	// Objects are in ascending byte order of their keys.
	Objects []ObjectInfo
	// Next is the cursor of the next page; "" when the listing is done.
	Next string
}

// Lister is implemented by backends that can list the objects of a
// bucket below a prefix. It is optional: the portable layer finds it by
// type assertion and answers Unimplemented for backends without it.
type Lister interface {
	List(ctx context.Context, bucket string, opts *ListOptions) (*ListPage, error)
}

// Stater is implemented by backends that can describe one object without
// reading it, in particular its SHA-256 when the store knows it. NotFound
// when the object does not exist.
type Stater interface {
	Stat(ctx context.Context, bucket, key string) (*ObjectInfo, error)
}
