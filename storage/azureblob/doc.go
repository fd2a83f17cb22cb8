// Package azureblob is signet's driver for Azure Blob Storage.
//
// A *Backend signs for one container (and optional prefix) of one storage
// account. Its URLs carry SAS tokens made by the official SDK's sas
// package: service SAS signed with the account key, or, with Entra ID
// credentials, user-delegation SAS signed with a user delegation key that
// the backend obtains, caches and renews. The control plane (Put Block and
// Put Block List for chunked uploads, Get Block List for resume, user
// delegation keys) uses the official azblob SDK.
//
// # What a URL binds, and what Azure enforces
//
// Every SAS binds the account, container and blob name, the permissions
// (r for GET and HEAD, c+w for a single PUT, w for a block), the start
// time (back-dated by ClockSkew), the expiry, the protocol (https only
// when the endpoint is https) and, when a client network is given, the
// IPv4 range in sip. Azure enforces all of these; Azurite does too, which
// the tests prove.
//
// A SAS cannot bind a request's Content-Type, Content-Length or body
// checksum, and sip takes no IPv6. So SignedURL refuses, with
// Unimplemented, a content type, size or SHA-256 on a single PUT and an
// IPv6 client network. Chunked uploads do better, because signet commits
// them: the content type is set by signet at commit, every block's size is
// checked against the plan at commit, and a whole-object SHA-256 is
// checked by reading the object back (see Backend.CompleteMultipart).
//
// A SAS also cannot bind the operation: a block URL (sp=w) could be used
// for any write to that one blob, such as Put Blob, until it expires. It
// reaches no other blob.
//
// # Chunked uploads
//
// A chunked upload is a set of uncommitted blocks of the target blob with
// deterministic block ids (see blockID): part n of upload u always has the
// same id, so a part may be retried and the store's block list is the
// resume state. Azure keeps no upload object, so CreateMultipart stages a
// one-byte marker block that makes the upload visible to ListParts, and
// AbortMultipart stages a tombstone block; Put Block List at completion
// commits the parts in order and discards every uncommitted block of the
// blob, markers included. Azure itself discards uncommitted blocks a week
// after the blob's last Put Block. The consequences are listed at
// Backend.CreateMultipart.
//
// docs/azure.md in the repository tells how to configure a real account.
package azureblob
