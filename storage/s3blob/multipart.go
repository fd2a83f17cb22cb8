package s3blob

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// CreateMultipart implements driver.Multipart with S3
// CreateMultipartUpload, with the content type and, when the backend has a
// KMS key, SSE-KMS. Codes: PermissionDenied for a key outside the bucket
// and prefix (or when the store refuses); Unimplemented for a SHA-256 when
// Config.DisableMultipartSHA256 is set; otherwise the store's error mapped
// as storeError describes (NotFound for a missing bucket, Unavailable when
// the store cannot be reached).
func (b *Backend) CreateMultipart(ctx context.Context, bucket, key string, opts *driver.MultipartOptions) (string, error) {
	const op = "s3blob.CreateMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return "", err
	}
	if opts == nil {
		opts = &driver.MultipartOptions{}
	}
	if opts.SHA256 != nil && b.noMPCheck {
		return "", signet.E(op, signet.Unimplemented, "this connector does not verify a sha256 of chunked uploads", nil)
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(b.bucket), Key: aws.String(key)}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	if opts.SHA256 != nil {
		// Recorded now, true once CompleteMultipart has verified it (an
		// object that does not match is deleted); Stat reports it.
		in.Metadata = map[string]string{SHA256Meta: hex.EncodeToString(opts.SHA256)}
	}
	if b.kmsKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(b.kmsKeyID)
	}
	out, err := b.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", storeError(op, "the store refused to start the upload", err)
	}
	if out.UploadId == nil || *out.UploadId == "" {
		return "", signet.E(op, signet.Internal, "the store returned no upload id", nil)
	}
	return *out.UploadId, nil
}

// ListParts implements driver.Multipart with S3 ListParts, following every
// page. Codes: PermissionDenied for a key outside the bucket and prefix;
// NotFound when the store has no such upload for key; otherwise as
// storeError describes.
func (b *Backend) ListParts(ctx context.Context, bucket, key, uploadID string) ([]driver.Part, error) {
	const op = "s3blob.ListParts"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	return b.listParts(ctx, op, key, uploadID)
}

func (b *Backend) listParts(ctx context.Context, op, key, uploadID string) ([]driver.Part, error) {
	var parts []driver.Part
	in := &s3.ListPartsInput{Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(uploadID)}
	if b.listPageSize > 0 {
		in.MaxParts = aws.Int32(b.listPageSize)
	}
	pages := s3.NewListPartsPaginator(b.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, storeError(op, "cannot list the upload's parts", err)
		}
		for _, p := range page.Parts {
			parts = append(parts, driver.Part{
				Number: int(aws.ToInt32(p.PartNumber)),
				ETag:   aws.ToString(p.ETag),
				Size:   aws.ToInt64(p.Size),
			})
		}
	}
	// S3 lists parts in ascending order; make sure of it.
	for i := 1; i < len(parts); i++ {
		if parts[i].Number <= parts[i-1].Number {
			return nil, signet.E(op, signet.Internal, "the store listed parts out of order", nil)
		}
	}
	return parts, nil
}

// CompleteMultipart implements driver.Multipart.
//
// It first lists the parts the store holds and requires them to be exactly
// parts: the same numbers, ETags and (where a Part's Size is not zero)
// sizes; otherwise it returns Invalid and leaves the upload as it is. S3
// itself would accept a subset of the uploaded parts. Then it calls S3
// CompleteMultipartUpload with the ETags.
//
// S3 cannot check a whole-object SHA-256 of a multipart upload: its
// multipart SHA-256 is a checksum of the parts' checksums, and full-object
// checksums exist only for CRCs. So when sha256 is not nil, CompleteMultipart
// reads the assembled object back once (GetObject with If-Match on the new
// ETag) and hashes it. On a mismatch it deletes the object and returns
// ChecksumMismatch; when the object cannot be read it also deletes it and
// returns Unavailable (the upload must be made again: nothing unverified is
// left behind); when another writer replaced the object meanwhile it
// returns Conflict and deletes nothing. This costs one read of the object
// from the store to signet; set Config.DisableMultipartSHA256 to refuse
// sha256 on chunked uploads (Unimplemented) instead.
//
// Other codes: PermissionDenied for a key outside the bucket and prefix;
// NotFound when the upload does not exist; otherwise as storeError
// describes.
func (b *Backend) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []driver.Part, sum []byte) error {
	const op = "s3blob.CompleteMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	if sum != nil && b.noMPCheck {
		return signet.E(op, signet.Unimplemented, "this connector does not verify a sha256 of chunked uploads", nil)
	}
	if sum != nil && len(sum) != sha256.Size {
		return signet.E(op, signet.Invalid, "sha256 must be 32 bytes", nil)
	}
	if len(parts) == 0 {
		return signet.E(op, signet.InvalidPart, "an upload has at least one part", nil)
	}
	held, err := b.listParts(ctx, op, key, uploadID)
	if err != nil {
		return err
	}
	if err := matchParts(op, parts, held); err != nil {
		return err
	}
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(p.ETag)}
	}
	out, err := b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		return storeError(op, "the store refused to assemble the upload", err)
	}
	if sum == nil {
		return nil
	}
	return b.verifySHA256(ctx, key, aws.ToString(out.ETag), sum)
}

// matchParts checks that the client's list names exactly the parts held.
func matchParts(op string, parts, held []driver.Part) error {
	if len(held) < len(parts) {
		n := len(held) + 1
		for i, h := range held {
			if h.Number != i+1 {
				n = i + 1
				break
			}
		}
		return signet.E(op, signet.Invalid, "part "+strconv.Itoa(n)+" has not been uploaded", nil)
	}
	if len(held) > len(parts) {
		return signet.E(op, signet.Invalid, "the store holds parts that are not listed; list every part", nil)
	}
	for i, p := range parts {
		h := held[i]
		switch {
		case h.Number != p.Number:
			return signet.E(op, signet.Invalid, "part "+strconv.Itoa(p.Number)+" has not been uploaded", nil)
		case trimETag(h.ETag) != trimETag(p.ETag):
			return signet.E(op, signet.Invalid, "the ETag of part "+strconv.Itoa(p.Number)+" does not match the uploaded part", nil)
		case p.Size != 0 && h.Size != p.Size:
			return signet.E(op, signet.Invalid, "part "+strconv.Itoa(p.Number)+" does not have the planned size", nil)
		}
	}
	return nil
}

// verifySHA256 reads the object back and compares its SHA-256 with want,
// deleting it when they differ or it cannot be read (see
// CompleteMultipart).
func (b *Backend) verifySHA256(ctx context.Context, key, etag string, want []byte) error {
	const op = "s3blob.CompleteMultipart"
	got, err := b.hashObject(ctx, key, etag)
	if err != nil {
		if signet.ErrorCode(err) == signet.Conflict {
			return err
		}
		derr := b.deleteObject(ctx, key)
		return signet.E(op, signet.Unavailable,
			"cannot read the assembled object to verify its sha256; it was removed, upload it again",
			errors.Join(err, derr))
	}
	if subtle.ConstantTimeCompare(got, want) == 1 {
		return nil
	}
	if err := b.deleteObject(ctx, key); err != nil {
		return signet.E(op, signet.ChecksumMismatch,
			"the uploaded object does not match the declared sha256, and removing it failed", err)
	}
	return signet.E(op, signet.ChecksumMismatch, "the uploaded object does not match the declared sha256; it was removed", nil)
}

func (b *Backend) hashObject(ctx context.Context, key, etag string) ([]byte, error) {
	const op = "s3blob.CompleteMultipart"
	in := &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		code := storeCode(err)
		if code == signet.Conflict {
			return nil, signet.E(op, signet.Conflict, "the object was replaced while its sha256 was being verified", err)
		}
		return nil, signet.E(op, code, "cannot read the assembled object", err)
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return nil, signet.E(op, signet.Unavailable, "cannot read the assembled object", err)
	}
	return h.Sum(nil), nil
}

// deleteObject removes key, detached from ctx's cancellation so a client
// that goes away does not leave an unverified object behind.
func (b *Backend) deleteObject(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key),
	})
	return err
}

// AbortMultipart implements driver.Multipart with S3
// AbortMultipartUpload. Since some stores (MinIO) answer success for an
// upload that does not exist, it first asks for one part of the upload
// (ListParts), so an unknown upload id, or another key's, is NotFound
// everywhere. Codes: PermissionDenied for a key outside the bucket and
// prefix; NotFound when the upload does not exist; otherwise as storeError
// describes.
func (b *Backend) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	const op = "s3blob.AbortMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	_, err := b.client.ListParts(ctx, &s3.ListPartsInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(uploadID), MaxParts: aws.Int32(1),
	})
	if err != nil {
		return storeError(op, "cannot find the upload", err)
	}
	_, err = b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return storeError(op, "cannot abort the upload", err)
	}
	return nil
}

func trimETag(s string) string { return strings.Trim(s, `"`) }
