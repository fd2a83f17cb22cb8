// Package gcsblob is signet's driver for Google Cloud Storage.
//
// A *Backend signs for one bucket (and optional prefix). Its URLs are GCS
// V4 signed URLs for the XML API, path style, made by a small signer of
// signet's own: GOOG4-RSA-SHA256 with a service account key (parsed once,
// when the backend opens), GOOG4-HMAC-SHA256 with an HMAC key, about a
// thousand times cheaper per URL, or, without a key, GOOG4-RSA-SHA256
// signed by the IAM Credentials API's signBlob as a service account the
// server's own identity may sign for (workload identity; one call to
// Google per signature, URLs at most 12 hours). The signer is checked against every
// signed-URL case of Google's cross-SDK conformance file, against
// cloud.google.com/go/storage's SignedURL, and by a verifier in the tests
// that checks RSA signatures with the public key and recomputes HMAC ones.
// The official SDK is not used to sign because it cannot sign with HMAC
// keys and parses the PEM key on every call; it is used only in tests.
//
// Chunked uploads use the XML API's multipart upload: signet starts,
// lists, completes and aborts an upload with requests signed by the same
// signer, and each part gets its own signed URL.
//
// What a URL binds and GCS enforces is listed at Backend.SignedURL; how a
// whole-object SHA-256 of a chunked upload is verified at
// Backend.CompleteMultipart. docs/gcs.md in the repository tells how to
// configure a bucket.
package gcsblob
