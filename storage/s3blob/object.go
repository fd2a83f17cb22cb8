package s3blob

import (
	"bytes"
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet"
)

// PutNew writes data to key (below the backend's prefix) only if no object
// has that key yet (If-None-Match: *), so a record written once is never
// replaced through signet. Codes: Conflict when the key exists (the
// existing object is left alone); PermissionDenied for a key outside the
// prefix or refused credentials; otherwise as storeError describes.
func (b *Backend) PutNew(ctx context.Context, key string, data []byte, contentType string) error {
	const op = "s3blob.PutNew"
	if err := b.scope().CheckKey(op, b.bucket, key); err != nil {
		return err
	}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType),
		IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		return storeError(op, "cannot write the object", err)
	}
	return nil
}

// ReadSmall reads a whole object of at most max bytes. Codes: NotFound;
// TooLarge past max; otherwise as storeError describes.
func (b *Backend) ReadSmall(ctx context.Context, key string, max int64) ([]byte, error) {
	const op = "s3blob.ReadSmall"
	if err := b.scope().CheckKey(op, b.bucket, key); err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, storeError(op, "cannot read the object", err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, max+1))
	if err != nil {
		return nil, storeError(op, "cannot read the object", err)
	}
	if int64(len(data)) > max {
		return nil, signet.E(op, signet.TooLarge, "the object is larger than expected", nil)
	}
	return data, nil
}
