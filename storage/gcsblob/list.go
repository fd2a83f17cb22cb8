package gcsblob

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// SHA256Meta is the custom metadata (x-goog-meta-signet-sha256) in which a
// chunked upload created with a declared SHA-256 records it, lower-case
// hex. GCS cannot check a SHA-256, so CompleteMultipart reads the object
// back and deletes it unless it matches: an object that carries this
// metadata and was completed through signet has been verified to match
// it.
const SHA256Meta = "signet-sha256"

var (
	_ driver.Lister = (*Backend)(nil)
	_ driver.Stater = (*Backend)(nil)
)

// List implements driver.Lister with the XML API's object listing
// (GET /<bucket>?prefix=&marker=&max-keys=), signed like the other
// control-plane requests. The cursor is the last key of the page before,
// sent as marker. Keys at or before the cursor and keys beyond the limit
// are dropped here too, so a store that ignores marker or max-keys (as
// fake-gcs-server does) still pages correctly, if slowly. The XML listing
// carries no custom metadata, so SHA256 is nil (Stat reports it). Codes:
// PermissionDenied for another bucket or a prefix outside Config.Prefix
// (or when the store refuses); otherwise as storeError describes.
func (b *Backend) List(ctx context.Context, bucket string, o *driver.ListOptions) (*driver.ListPage, error) {
	const op = "gcsblob.List"
	if err := b.scope().CheckListPrefix(op, bucket, o.Prefix); err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q := []param{{"max-keys", strconv.Itoa(limit)}}
	if o.Prefix != "" {
		q = append(q, param{"prefix", o.Prefix})
	}
	if o.Cursor != "" {
		q = append(q, param{"marker", o.Cursor})
	}
	resp, err := b.callPath(ctx, http.MethodGet, b.basePath, q, nil, nil)
	if err != nil {
		return nil, storeError(op, "cannot list the bucket", err)
	}
	var res struct {
		IsTruncated bool   `xml:"IsTruncated"`
		NextMarker  string `xml:"NextMarker"`
		Contents    []struct {
			Key          string `xml:"Key"`
			LastModified string `xml:"LastModified"`
			ETag         string `xml:"ETag"`
			Size         int64  `xml:"Size"`
		} `xml:"Contents"`
	}
	if err := decode(resp, &res); err != nil {
		return nil, storeError(op, "cannot list the bucket", err)
	}
	page := &driver.ListPage{}
	more := res.IsTruncated
	for i, c := range res.Contents {
		if o.Cursor != "" && c.Key <= o.Cursor {
			continue
		}
		if len(page.Objects) == limit {
			more = more || i < len(res.Contents)
			break
		}
		info := driver.ObjectInfo{Key: c.Key, Size: c.Size, ETag: c.ETag}
		if info.ETag != "" && !strings.HasPrefix(info.ETag, `"`) {
			info.ETag = `"` + info.ETag + `"`
		}
		if t, err := time.Parse(time.RFC3339Nano, c.LastModified); err == nil {
			info.LastModified = t
		}
		page.Objects = append(page.Objects, info)
	}
	if more {
		if n := len(page.Objects); n > 0 {
			page.Next = page.Objects[n-1].Key
		} else {
			page.Next = res.NextMarker
		}
		if page.Next == "" || page.Next <= o.Cursor {
			return nil, signet.E(op, signet.Internal, "the store's listing does not advance", nil)
		}
	}
	return page, nil
}

// Stat implements driver.Stater with a signed HEAD of the object. SHA256
// is the SHA256Meta metadata when the object has it. Codes:
// PermissionDenied for a key outside the bucket and prefix; NotFound;
// otherwise as storeError describes.
func (b *Backend) Stat(ctx context.Context, bucket, key string) (*driver.ObjectInfo, error) {
	const op = "gcsblob.Stat"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	resp, err := b.call(ctx, http.MethodHead, key, nil, nil, nil)
	if err != nil {
		return nil, storeError(op, "cannot read the object's attributes", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	info := &driver.ObjectInfo{Key: key, Size: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	if v := resp.Header.Get("X-Goog-Stored-Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			info.Size = n
		}
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.LastModified = t
	}
	if sum, err := hex.DecodeString(resp.Header.Get("X-Goog-Meta-" + SHA256Meta)); err == nil && len(sum) == 32 {
		info.SHA256 = sum
	}
	return info, nil
}
