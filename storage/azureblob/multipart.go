package azureblob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// Block ids. Azure requires every block id of a blob to have the same
// length, at most 64 bytes before base64. Ours are 36 bytes,
//
//	"signet" kind nonce number
//
// where kind is one byte (kindPart, kindMarker or kindTombstone), nonce the
// 24 base32 characters that start the upload id, and number 5 decimal
// digits (0 for markers), so the base64 form has 48 characters and no
// padding.
const (
	nonceLen      = 24
	blockIDRawLen = 6 + 1 + nonceLen + 5

	kindPart      = 'p' // a part of the upload
	kindMarker    = 'm' // staged by CreateMultipart: the upload exists
	kindTombstone = 'x' // staged by AbortMultipart: the upload was aborted
)

// blockID returns the base64 block id of part n (or of a marker, n = 0) of
// the upload with nonce.
func blockID(nonce string, kind byte, n int) string {
	raw := fmt.Appendf(make([]byte, 0, blockIDRawLen), "signet%c%s%05d", kind, nonce, n)
	return base64.StdEncoding.EncodeToString(raw)
}

// parseBlockID returns the kind, nonce and number of a block id of ours.
// ok is false for any other block id.
func parseBlockID(id string) (kind byte, nonce string, n int, ok bool) {
	var raw [blockIDRawLen + 2]byte
	if base64.StdEncoding.DecodedLen(len(id)) > len(raw) {
		return 0, "", 0, false
	}
	m, err := base64.StdEncoding.Decode(raw[:], []byte(id))
	if err != nil || m != blockIDRawLen || string(raw[:6]) != "signet" {
		return 0, "", 0, false
	}
	for _, c := range raw[blockIDRawLen-5 : blockIDRawLen] {
		if c < '0' || c > '9' {
			return 0, "", 0, false
		}
		n = n*10 + int(c-'0')
	}
	return raw[6], string(raw[7 : 7+nonceLen]), n, true
}

// newUploadID returns a fresh upload id: a random nonce of nonceLen base32
// characters, then, when the upload has a content type, "." and the
// content type in unpadded base64url. The id is all the state a chunked
// upload has besides the store's blocks; signet keeps it on the server
// (it is never shown to clients), so it can carry the content type to
// CompleteMultipart.
func newUploadID(contentType string) string {
	id := signet.NewID(15) // 24 characters
	if contentType != "" {
		id += "." + base64.RawURLEncoding.EncodeToString([]byte(contentType))
	}
	return id
}

// parseUploadID splits an upload id made by newUploadID.
func parseUploadID(id string) (nonce, contentType string, ok bool) {
	nonce, enc, hasType := strings.Cut(id, ".")
	if len(nonce) != nonceLen {
		return "", "", false
	}
	for i := 0; i < len(nonce); i++ {
		if c := nonce[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return "", "", false
		}
	}
	if hasType {
		ct, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || len(ct) == 0 {
			return "", "", false
		}
		contentType = string(ct)
	}
	return nonce, contentType, true
}

// CreateMultipart implements driver.Multipart. Azure has no upload object:
// CreateMultipart returns a new upload id (see newUploadID) and stages a
// one-byte marker block on the blob, so that ListParts, AbortMultipart and
// CompleteMultipart can tell an upload that exists from one that never did
// or has ended. Parts are blocks staged through part URLs (SignedURL with
// UploadID and PartNumber) under deterministic block ids.
//
// Because an upload lives in the blob's list of uncommitted blocks, which
// Azure keeps per blob:
//
//   - uncommitted blocks, and so an upload, vanish a week after the blob's
//     last Put Block (Azure's garbage collection), whatever signet's
//     upload expiry says;
//   - completing any upload of a blob, or any Put Block List or Put Blob on
//     it, discards the blocks of every other upload of that blob: of two
//     concurrent uploads of one key, the first to complete wins and the
//     other's completion fails with Invalid (parts missing);
//   - a blob whose uncommitted blocks were staged by another tool with
//     block ids of another length refuses ours (Invalid) until those
//     blocks are committed or collected.
//
// The content type is applied when the upload completes. A SHA-256 is
// verified then (see CompleteMultipart) unless
// Config.DisableMultipartSHA256 is set, when it is Unimplemented. Codes:
// PermissionDenied for a key outside the container and prefix (or when the
// store refuses); Invalid for a part size above MaxBlockSize; otherwise the
// store's error mapped as storeError describes (NotFound for a missing
// container, Unavailable when the store cannot be reached).
func (b *Backend) CreateMultipart(ctx context.Context, bucket, key string, opts *driver.MultipartOptions) (string, error) {
	const op = "azureblob.CreateMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return "", err
	}
	switch {
	case opts.SHA256 != nil && b.noMPCheck:
		return "", signet.E(op, signet.Unimplemented, "this connector does not verify the SHA-256 of chunked uploads", nil)
	case opts.PartSize > MaxBlockSize:
		return "", signet.E(op, signet.Invalid, "an Azure block holds at most 4000 MiB; choose a smaller part size", nil)
	}
	id := newUploadID(opts.ContentType)
	nonce, _, _ := parseUploadID(id)
	if err := b.stage(ctx, key, blockID(nonce, kindMarker, 0)); err != nil {
		return "", storeError(op, "cannot start the upload", err)
	}
	return id, nil
}

// stage puts a one-byte block on key.
func (b *Backend) stage(ctx context.Context, key, id string) error {
	_, err := b.client.NewBlockBlobClient(key).StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader([]byte{0})), nil)
	return err
}

// ListParts implements driver.Multipart with Get Block List: the parts are
// the upload's uncommitted blocks, each with its block id as ETag (Put
// Block answers no ETag; see CompleteMultipart) and its size. Codes:
// PermissionDenied for a key outside the container and prefix; NotFound
// when the upload does not exist (never created, completed, aborted, or
// its blocks discarded by Azure); otherwise as storeError describes.
func (b *Backend) ListParts(ctx context.Context, bucket, key, uploadID string) ([]driver.Part, error) {
	const op = "azureblob.ListParts"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	nonce, _, ok := parseUploadID(uploadID)
	if !ok {
		return nil, errNoUpload(op)
	}
	return b.listParts(ctx, op, key, nonce)
}

func errNoUpload(op string) error {
	return signet.E(op, signet.NotFound, "no such upload", nil)
}

// listParts returns the upload's parts in ascending number order, or
// NotFound when its marker is missing or its tombstone present.
func (b *Backend) listParts(ctx context.Context, op, key, nonce string) ([]driver.Part, error) {
	resp, err := b.client.NewBlockBlobClient(key).GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, errNoUpload(op)
		}
		return nil, storeError(op, "cannot list the upload's parts", err)
	}
	var parts []driver.Part
	marker := false
	for _, blk := range resp.UncommittedBlocks {
		if blk == nil || blk.Name == nil {
			continue
		}
		kind, nc, n, ok := parseBlockID(*blk.Name)
		if !ok || nc != nonce {
			continue
		}
		switch kind {
		case kindMarker:
			marker = true
		case kindTombstone:
			return nil, errNoUpload(op)
		case kindPart:
			var size int64
			if blk.Size != nil {
				size = *blk.Size
			}
			parts = append(parts, driver.Part{Number: n, ETag: *blk.Name, Size: size})
		}
	}
	if !marker {
		return nil, errNoUpload(op)
	}
	slices.SortFunc(parts, func(a, b driver.Part) int { return a.Number - b.Number })
	// A block id appears once in the list; make sure of it.
	for i := 1; i < len(parts); i++ {
		if parts[i].Number == parts[i-1].Number {
			return nil, signet.E(op, signet.Internal, "the store listed a block twice", nil)
		}
	}
	return parts, nil
}

// CompleteMultipart implements driver.Multipart with Put Block List.
//
// The ETag of a part is its block id, which ListParts reports and which
// the part URL carries (query parameter blockid): Put Block answers no
// ETag. CompleteMultipart first lists the upload's blocks and requires
// them to be exactly parts: the same numbers, ETags equal to the block
// ids (quotes ignored) and, where a Part's Size is not zero, the same
// sizes; otherwise it returns Invalid and leaves the upload as it is. So
// the object has exactly the planned size even though no part URL could
// bind one. Then it commits the blocks in order, with the upload's content
// type (x-ms-blob-content-type), which discards every other uncommitted
// block of the blob.
//
// Azure stores no SHA-256 and cannot check one (a committed blob's MD5 is
// a property it does not verify). So when sha256 is not nil,
// CompleteMultipart reads the committed blob back once (with If-Match on
// its new ETag) and hashes it. On a mismatch it deletes the blob and
// returns ChecksumMismatch; when the blob cannot be read it also deletes
// it and returns Unavailable (nothing unverified is left behind); when
// another writer replaced the blob meanwhile it returns Conflict and
// deletes nothing. Until then the blob is visible. This costs one read of
// the object from Azure to signet; set Config.DisableMultipartSHA256 to
// refuse sha256 on chunked uploads (Unimplemented) instead.
//
// Other codes: PermissionDenied for a key outside the container and
// prefix; NotFound when the upload does not exist; otherwise as storeError
// describes.
func (b *Backend) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []driver.Part, sum []byte) error {
	const op = "azureblob.CompleteMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	if sum != nil && b.noMPCheck {
		return signet.E(op, signet.Unimplemented, "this connector does not verify the SHA-256 of chunked uploads", nil)
	}
	nonce, contentType, ok := parseUploadID(uploadID)
	if !ok {
		return errNoUpload(op)
	}
	held, err := b.listParts(ctx, op, key, nonce)
	if err != nil {
		return err
	}
	if err := matchParts(op, nonce, parts, held); err != nil {
		return err
	}
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = blockID(nonce, kindPart, p.Number)
	}
	var opts blockblob.CommitBlockListOptions
	if contentType != "" {
		opts.HTTPHeaders = &blob.HTTPHeaders{BlobContentType: &contentType}
	}
	if sum != nil {
		// True once verifySHA256 has passed (a blob that does not match
		// is deleted); Stat and List report it.
		h := hex.EncodeToString(sum)
		opts.Metadata = map[string]*string{SHA256Meta: &h}
	}
	resp, err := b.client.NewBlockBlobClient(key).CommitBlockList(ctx, ids, &opts)
	if err != nil {
		return storeError(op, "cannot commit the upload", err)
	}
	if sum == nil {
		return nil
	}
	if resp.ETag == nil {
		b.deleteBlob(ctx, key, nil)
		return signet.E(op, signet.Unavailable, "the store answered the commit without an ETag; the object was deleted", nil)
	}
	return b.verifySHA256(ctx, key, *resp.ETag, sum)
}

// matchParts checks that the client's list names exactly the parts held.
func matchParts(op, nonce string, parts, held []driver.Part) error {
	if len(parts) != len(held) {
		return signet.E(op, signet.Invalid, fmt.Sprintf("the store holds %d parts of the upload; %d listed", len(held), len(parts)), nil)
	}
	for i, p := range parts {
		h := held[i]
		want := blockID(nonce, kindPart, p.Number)
		switch {
		case h.Number != p.Number:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d is missing", p.Number), nil)
		case subtle.ConstantTimeCompare([]byte(strings.Trim(p.ETag, `"`)), []byte(want)) != 1:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d: the ETag is not the part's block id", p.Number), nil)
		case p.Size != 0 && h.Size != p.Size:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d has %d bytes, want %d; upload it again", p.Number, h.Size, p.Size), nil)
		}
	}
	return nil
}

// verifySHA256 reads the blob back and compares its SHA-256 with want,
// deleting it when they differ or it cannot be read (see
// CompleteMultipart).
func (b *Backend) verifySHA256(ctx context.Context, key string, etag azcore.ETag, want []byte) error {
	const op = "azureblob.CompleteMultipart"
	got, err := b.hashBlob(ctx, key, etag)
	switch {
	case bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobNotFound):
		return signet.E(op, signet.Conflict, "the object was replaced or deleted while its checksum was verified", err)
	case err != nil:
		b.deleteBlob(ctx, key, &etag)
		return signet.E(op, signet.Unavailable, "cannot read the object back to verify its sha256; it was deleted, upload it again", err)
	case subtle.ConstantTimeCompare(got, want) != 1:
		if err := b.deleteBlob(ctx, key, &etag); err != nil && !bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobNotFound) {
			return signet.E(op, signet.Unavailable, "the object does not match the declared sha256 and could not be deleted", err)
		}
		return signet.E(op, signet.ChecksumMismatch, "the object does not match the declared sha256; it was deleted", nil)
	}
	return nil
}

func (b *Backend) hashBlob(ctx context.Context, key string, etag azcore.ETag) ([]byte, error) {
	resp, err := b.client.NewBlobClient(key).DownloadStream(ctx, &blob.DownloadStreamOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}},
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// deleteBlob removes key (only at etag when it is not nil), detached from
// ctx's cancellation so a client that goes away does not leave an
// unverified object behind.
func (b *Backend) deleteBlob(ctx context.Context, key string, etag *azcore.ETag) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var opts blob.DeleteOptions
	if etag != nil {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag}}
	}
	_, err := b.client.NewBlobClient(key).Delete(ctx, &opts)
	return err
}

// AbortMultipart implements driver.Multipart. Azure cannot delete
// uncommitted blocks short of committing the blob, which would change or
// create the object, so AbortMultipart stages a one-byte tombstone block:
// from then on ListParts, CompleteMultipart and AbortMultipart answer
// NotFound for the upload. Its blocks stay stored (and billed) until the
// blob is next committed or Azure collects them, a week after the blob's
// last Put Block; a part URL minted before the abort can still stage a
// block until it expires, which then only waits for collection too.
// Codes: PermissionDenied for a key outside the container and prefix;
// NotFound when the upload does not exist; otherwise as storeError
// describes.
func (b *Backend) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	const op = "azureblob.AbortMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	nonce, _, ok := parseUploadID(uploadID)
	if !ok {
		return errNoUpload(op)
	}
	if _, err := b.listParts(ctx, op, key, nonce); err != nil {
		return err
	}
	if err := b.stage(ctx, key, blockID(nonce, kindTombstone, 0)); err != nil {
		return storeError(op, "cannot abort the upload", err)
	}
	return nil
}
