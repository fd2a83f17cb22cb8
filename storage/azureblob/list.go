package azureblob

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/signetdev/signet/storage/driver"
)

// SHA256Meta is the metadata (x-ms-meta-signet_sha256; Azure's metadata
// names are C# identifiers, so no "-") in which a chunked upload completed
// with a declared SHA-256 records it, lower-case hex. Azure cannot check a
// SHA-256, so CompleteMultipart reads the committed blob back and deletes
// it unless it matches: a blob that carries this metadata and was
// committed through signet has been verified to match it.
const SHA256Meta = "signet_sha256"

var (
	_ driver.Lister = (*Backend)(nil)
	_ driver.Stater = (*Backend)(nil)
)

// List implements driver.Lister with List Blobs (flat, with metadata), one
// page per call; the cursor is Azure's marker. SHA256 is the SHA256Meta
// metadata when a blob has it. Codes: PermissionDenied for another
// container or a prefix outside Config.Prefix (or when the store refuses);
// otherwise as storeError describes.
func (b *Backend) List(ctx context.Context, bucket string, o *driver.ListOptions) (*driver.ListPage, error) {
	const op = "azureblob.List"
	if err := b.scope().CheckListPrefix(op, bucket, o.Prefix); err != nil {
		return nil, err
	}
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if o.Prefix != "" {
		opts.Prefix = &o.Prefix
	}
	if o.Cursor != "" {
		opts.Marker = &o.Cursor
	}
	if o.Limit > 0 {
		n := int32(min(o.Limit, 1000))
		opts.MaxResults = &n
	}
	resp, err := b.client.NewListBlobsFlatPager(opts).NextPage(ctx)
	if err != nil {
		return nil, storeError(op, "cannot list the container", err)
	}
	page := &driver.ListPage{}
	if resp.Segment != nil {
		for _, it := range resp.Segment.BlobItems {
			if it == nil || it.Name == nil || it.Properties == nil {
				continue
			}
			info := driver.ObjectInfo{Key: *it.Name, SHA256: metaSHA256(it.Metadata)}
			p := it.Properties
			if p.ContentLength != nil {
				info.Size = *p.ContentLength
			}
			if p.LastModified != nil {
				info.LastModified = *p.LastModified
			}
			info.ETag = quoteETag(p.ETag)
			page.Objects = append(page.Objects, info)
		}
	}
	if resp.NextMarker != nil {
		page.Next = *resp.NextMarker
	}
	return page, nil
}

// Stat implements driver.Stater with Get Blob Properties. SHA256 is the
// SHA256Meta metadata when the blob has it. Codes: PermissionDenied for a
// key outside the container and prefix; NotFound; otherwise as storeError
// describes.
func (b *Backend) Stat(ctx context.Context, bucket, key string) (*driver.ObjectInfo, error) {
	const op = "azureblob.Stat"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	p, err := b.client.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return nil, storeError(op, "cannot read the blob's properties", err)
	}
	info := &driver.ObjectInfo{Key: key, SHA256: metaSHA256(p.Metadata), ETag: quoteETag(p.ETag)}
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.LastModified = *p.LastModified
	}
	return info, nil
}

// metaSHA256 finds SHA256Meta in m (metadata names are case-insensitive).
func metaSHA256(m map[string]*string) []byte {
	for k, v := range m {
		if strings.EqualFold(k, SHA256Meta) && v != nil {
			if sum, err := hex.DecodeString(*v); err == nil && len(sum) == 32 {
				return sum
			}
		}
	}
	return nil
}

// quoteETag returns e as the ETag header carries it, quoted.
func quoteETag(e *azcore.ETag) string {
	if e == nil || *e == "" {
		return ""
	}
	s := string(*e)
	if !strings.HasPrefix(s, `"`) {
		s = `"` + s + `"`
	}
	return s
}
