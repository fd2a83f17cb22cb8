package s3blob

import (
	"context"
	"encoding/base64"
	"encoding/hex"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// SHA256Meta is the user metadata (x-amz-meta-signet-sha256) in which a
// chunked upload created with a declared SHA-256 records it, lower-case
// hex. S3 cannot check a whole-object SHA-256 of a multipart upload (its
// multipart SHA-256 is a checksum of the parts' checksums), so
// CompleteMultipart reads the object back and deletes it unless it
// matches: an object that carries this metadata and was completed through
// signet has been verified to match it.
const SHA256Meta = "signet-sha256"

var (
	_ driver.Lister = (*Backend)(nil)
	_ driver.Stater = (*Backend)(nil)
)

// List implements driver.Lister with S3 ListObjectsV2. The cursor is S3's
// continuation token. S3 lists no checksums, so SHA256 is nil (Stat
// reports it). Codes: PermissionDenied for another bucket or a prefix
// outside Config.Prefix (or when the store refuses); otherwise as
// storeError describes.
func (b *Backend) List(ctx context.Context, bucket string, o *driver.ListOptions) (*driver.ListPage, error) {
	const op = "s3blob.List"
	if err := b.scope().CheckListPrefix(op, bucket, o.Prefix); err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket)}
	if o.Prefix != "" {
		in.Prefix = aws.String(o.Prefix)
	}
	if o.Limit > 0 {
		in.MaxKeys = aws.Int32(int32(min(o.Limit, 1000)))
	}
	if o.Cursor != "" {
		in.ContinuationToken = aws.String(o.Cursor)
	}
	out, err := b.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, storeError(op, "cannot list the bucket", err)
	}
	page := &driver.ListPage{Objects: make([]driver.ObjectInfo, 0, len(out.Contents))}
	for _, c := range out.Contents {
		page.Objects = append(page.Objects, driver.ObjectInfo{
			Key:          aws.ToString(c.Key),
			Size:         aws.ToInt64(c.Size),
			LastModified: aws.ToTime(c.LastModified),
			ETag:         aws.ToString(c.ETag),
		})
	}
	if aws.ToBool(out.IsTruncated) {
		page.Next = aws.ToString(out.NextContinuationToken)
		if page.Next == "" {
			return nil, signet.E(op, signet.Internal, "the store's listing is truncated without a continuation token", nil)
		}
	}
	return page, nil
}

// Stat implements driver.Stater with HeadObject in checksum mode. The
// SHA-256 is the store's full-object x-amz-checksum-sha256 (single uploads
// whose URL bound one: S3 checked it when it stored the bytes), else the
// SHA256Meta metadata a verified chunked upload carries; a composite
// checksum (of the parts' checksums) is ignored. Codes: PermissionDenied
// for a key outside the bucket and prefix; NotFound; otherwise as
// storeError describes.
func (b *Backend) Stat(ctx context.Context, bucket, key string) (*driver.ObjectInfo, error) {
	const op = "s3blob.Stat"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return nil, storeError(op, "cannot read the object's attributes", err)
	}
	info := &driver.ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified),
		ETag:         aws.ToString(out.ETag),
	}
	if v := aws.ToString(out.ChecksumSHA256); v != "" && out.ChecksumType != types.ChecksumTypeComposite {
		if sum, err := base64.StdEncoding.DecodeString(v); err == nil && len(sum) == 32 {
			info.SHA256 = sum
		}
	}
	if info.SHA256 == nil {
		if sum, err := hex.DecodeString(out.Metadata[SHA256Meta]); err == nil && len(sum) == 32 {
			info.SHA256 = sum
		}
	}
	return info, nil
}
