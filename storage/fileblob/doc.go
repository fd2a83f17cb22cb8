// Package fileblob is signet's built-in local blob store. It keeps objects
// in a directory and serves its own pre-signed URLs under /blob/, so the
// default install needs no cloud store.
//
// A *Store is a driver.Backend and a driver.Multipart that signs URLs with
// HMAC-SHA256, and an http.Handler that serves those URLs. Every file access
// goes through an os.Root, so neither a key nor a symbolic link planted
// inside the directory can make it read or write anything outside it.
//
// # Signed URLs
//
// A signed URL has the form
//
//	BaseURL/blob/<bucket>/<key>?<query>
//
// where each "/"-separated segment of key is escaped with url.PathEscape
// (so "%" travels as "%25" and is never decoded into anything else), and the
// query holds these parameters, each at most once:
//
//	v       "1", the version of this format                  (required)
//	kid     id of the key that signed the URL                (required)
//	method  GET, HEAD or PUT; the request must use exactly it (required)
//	expires Unix seconds; the URL works while now < expires  (required)
//	size    exact body size in bytes (PUT)                   (optional)
//	type    exact Content-Type of the body (PUT)             (optional)
//	sha256  SHA-256 of the body, lower-case hex (PUT)        (optional)
//	ip      client network, a canonical masked CIDR prefix   (optional)
//	upload  multipart upload id (PUT of one part)            (optional)
//	part    part number, 1..10000, with upload               (optional)
//	grant   opaque correlation id of the issuing grant       (optional)
//	sig     HMAC-SHA256 signature, unpadded base64url        (required)
//
// Numbers are decimal without sign or leading zeros. A query with an
// unknown, repeated or non-canonical parameter is refused as an invalid
// signature (403), so every URL the store accepts is one it issued, byte for
// byte in its values.
//
// The signature is HMAC-SHA256, under the key named by kid, of a canonical
// string: the fields below in this order, each written as its length in
// bytes in decimal, ":", then its bytes:
//
//	"signet-blob-v1", kid, method, bucket, key, expires,
//	size ("" when unbound), "1" or "0" (whether type is bound), type,
//	sha256 hex ("" when unbound), ip ("" when unbound),
//	upload ("" when none), part ("" when none), grant
//
// Length prefixes make the encoding injective: no two different sets of
// values produce the same string. IPv4 clients seen as IPv4-mapped IPv6
// addresses are compared as IPv4.
//
// # Answers
//
// Refusals are application/problem+json documents with a stable code:
// signature_invalid, expired, method_not_allowed, ip_not_allowed and
// content_type_mismatch (403); invalid_key, invalid_content_type,
// size_mismatch, checksum_mismatch, invalid_part and incomplete_body (400);
// not_found (404); unsupported_method (405); conflict (409, a key that
// collides with a folder or the other way round); too_large (413);
// internal (500); with Options.Revoked, revoked (403, the URL's grant was
// revoked) and revocation_unknown (503, the check failed, so the request
// is refused). Details never hold the URL or its signature; request_id is
// the X-Request-Id of the answer, which every answer carries. A PUT
// answers 200 with the ETag (the quoted hex SHA-256 of the bytes); GET and
// HEAD support ranges and conditional requests, and serve objects with
// "X-Content-Type-Options: nosniff" and a sandboxing Content-Security-Policy
// because they share the API's origin.
//
// # Files
//
// Layout below the root directory:
//
//	objects/<bucket>/<key>    an object: a plain file holding exactly its bytes
//	meta/<bucket>/<key>       its content type and SHA-256 (JSON)
//	uploads/<id>/meta.json    a multipart upload's plan
//	uploads/<id>/<n>.part     its parts: a header with the part's SHA-256, then the bytes
//	tmp/                      files being written, renamed into place
//
// The meta tree mirrors the objects tree, so a sidecar can never collide
// with a key. A sidecar records the identity of the data file it describes
// (size, modification time, inode); if a crash between the two renames
// leaves one that does not match, it is ignored and the object is served as
// application/octet-stream without an ETag until it is uploaded again. The
// stored content type is the signed one, or the one sent when the URL binds
// none. Writes go to a file in tmp/ (on the same file system), which is
// synced, renamed into place, and its directory synced. Files under tmp/ not
// written to for an hour are removed when the store opens. Objects cannot
// be deleted through the store.
package fileblob
