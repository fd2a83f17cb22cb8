// Package s3blob is signet's driver for Amazon S3 and S3-compatible stores
// (MinIO, Ceph, Cloudflare R2, CoreWeave, ...).
//
// A *Backend signs for one bucket (and optional prefix). Its URLs are
// presigned with AWS Signature Version 4 by a small signer of signet's own,
// the hot path, which is checked byte for byte against the SigV4 test
// suite, the S3 documentation's example and aws-sdk-go-v2's
// s3.PresignClient. The control plane (multipart create, list parts,
// complete, abort; STS AssumeRole; the default credential chain) uses the
// official AWS SDK for Go v2.
//
// What a URL binds and the store enforces is listed at Backend.SignedURL;
// how a whole-object SHA-256 of a multipart upload is verified at
// Backend.CompleteMultipart. docs/s3.md in the repository tells how to
// configure a bucket.
package s3blob
