package gcsblob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// call sends one control-plane request for the object key to the XML
// API, signed like a URL (the same signer, controlExpiry), and returns the
// answer when its status is below 300. Other answers become a *storeErr,
// which storeError maps.
func (b *Backend) call(ctx context.Context, method, key string, query, headers []param, body []byte) (*http.Response, error) {
	return b.callPath(ctx, method, b.objectPath(key), query, headers, body)
}

// callPath is call for any escaped path: b.basePath is the bucket itself
// (its listing).
func (b *Backend) callPath(ctx context.Context, method, path string, query, headers []param, body []byte) (*http.Response, error) {
	r := &request{method: method, host: b.host, path: path, query: query, headers: headers,
		time: b.now(), expires: int64(controlExpiry / time.Second)}
	s, err := b.signer.presign(ctx, r)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url(r.path, s.query), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		req.Header.Set(h.name, h.value)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		// The client's error names the URL, a bearer secret: keep only
		// the cause.
		return nil, &transportErr{cause: unwrapURLError(err)}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readStoreErr(resp)
	}
	return resp, nil
}

// decode reads an XML answer into v, refusing an <Error> document (the
// XML API may answer 200 with one for a failed completion).
func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &transportErr{cause: err}
	}
	if e := parseStoreErr(resp.StatusCode, data); e != nil {
		return e
	}
	return xml.Unmarshal(data, v)
}

// CreateMultipart implements driver.Multipart with an XML API multipart
// upload (POST ?uploads), with the content type. Parts are uploaded
// through part URLs (SignedURL with UploadID and PartNumber), in any order
// and in parallel, and GCS keeps them until the upload is completed or
// aborted (a bucket lifecycle rule, AbortIncompleteMultipartUpload, should
// collect abandoned ones; see docs/gcs.md). XML multipart uploads are used
// rather than resumable uploads because only they give each part its own
// URL: a resumable session takes its chunks in order, from one client,
// through one session URI.
//
// A SHA-256 is verified when the upload completes (see CompleteMultipart)
// unless Config.DisableMultipartSHA256 is set, when it is Unimplemented.
// Codes: PermissionDenied for a key outside the bucket and prefix (or when
// the store refuses); otherwise the store's error mapped as storeError
// describes.
func (b *Backend) CreateMultipart(ctx context.Context, bucket, key string, opts *driver.MultipartOptions) (string, error) {
	const op = "gcsblob.CreateMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return "", err
	}
	if opts.SHA256 != nil && b.noMPCheck {
		return "", signet.E(op, signet.Unimplemented, "this connector does not verify the SHA-256 of chunked uploads", nil)
	}
	var headers []param
	if opts.ContentType != "" {
		headers = append(headers, param{"Content-Type", opts.ContentType})
	}
	if opts.SHA256 != nil {
		// True once CompleteMultipart has verified it (an object that
		// does not match is deleted); Stat reports it.
		headers = append(headers, param{"x-goog-meta-" + SHA256Meta, hex.EncodeToString(opts.SHA256)})
	}
	resp, err := b.call(ctx, http.MethodPost, key, []param{{"uploads", ""}}, headers, nil)
	if err != nil {
		return "", storeError(op, "cannot start the upload", err)
	}
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := decode(resp, &res); err != nil {
		return "", storeError(op, "cannot start the upload", err)
	}
	if res.UploadID == "" || len(res.UploadID) > 1024 || !isPrintable(res.UploadID) {
		return "", signet.E(op, signet.Internal, "the store answered without a usable upload id", nil)
	}
	return res.UploadID, nil
}

// ListParts implements driver.Multipart with the XML API's list parts
// (GET ?uploadId), following every page. Codes: PermissionDenied for a key
// outside the bucket and prefix; NotFound when the store has no such
// upload for key; otherwise as storeError describes.
func (b *Backend) ListParts(ctx context.Context, bucket, key, uploadID string) ([]driver.Part, error) {
	const op = "gcsblob.ListParts"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return nil, err
	}
	return b.listParts(ctx, op, key, uploadID)
}

func (b *Backend) listParts(ctx context.Context, op, key, uploadID string) ([]driver.Part, error) {
	var parts []driver.Part
	marker := ""
	for {
		q := []param{{"uploadId", uploadID}}
		if marker != "" {
			q = append(q, param{"part-number-marker", marker})
		}
		resp, err := b.call(ctx, http.MethodGet, key, q, nil, nil)
		if err != nil {
			return nil, storeError(op, "cannot list the upload's parts", err)
		}
		var page struct {
			IsTruncated          bool   `xml:"IsTruncated"`
			NextPartNumberMarker string `xml:"NextPartNumberMarker"`
			Parts                []struct {
				PartNumber int    `xml:"PartNumber"`
				ETag       string `xml:"ETag"`
				Size       int64  `xml:"Size"`
			} `xml:"Part"`
		}
		if err := decode(resp, &page); err != nil {
			return nil, storeError(op, "cannot list the upload's parts", err)
		}
		for _, p := range page.Parts {
			parts = append(parts, driver.Part{Number: p.PartNumber, ETag: p.ETag, Size: p.Size})
		}
		if !page.IsTruncated {
			break
		}
		if page.NextPartNumberMarker == "" || page.NextPartNumberMarker == marker {
			return nil, signet.E(op, signet.Internal, "the store's part listing does not advance", nil)
		}
		marker = page.NextPartNumberMarker
	}
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
// parts: the same numbers, ETags (quotes ignored) and, where a Part's Size
// is not zero, sizes; otherwise it returns Invalid and leaves the upload as
// it is. Then it completes the upload (POST ?uploadId) with the ETags.
//
// GCS cannot check a SHA-256 (it keeps MD5 and CRC32C, and a multipart
// object has no MD5). So when sha256 is not nil, CompleteMultipart reads
// the object back once (pinned to its new generation with
// x-goog-if-generation-match) and hashes it. On a mismatch it deletes that
// generation and returns ChecksumMismatch; when the object cannot be read
// it also deletes it and returns Unavailable (nothing unverified is left
// behind); when another writer replaced the object meanwhile it returns
// Conflict and deletes nothing. Until then the object is visible. This
// costs one read of the object from GCS to signet; set
// Config.DisableMultipartSHA256 to refuse sha256 on chunked uploads
// (Unimplemented) instead.
//
// Other codes: PermissionDenied for a key outside the bucket and prefix;
// NotFound when the upload does not exist; otherwise as storeError
// describes.
func (b *Backend) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []driver.Part, sum []byte) error {
	const op = "gcsblob.CompleteMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	if sum != nil && b.noMPCheck {
		return signet.E(op, signet.Unimplemented, "this connector does not verify the SHA-256 of chunked uploads", nil)
	}
	held, err := b.listParts(ctx, op, key, uploadID)
	if err != nil {
		return err
	}
	if err := matchParts(op, parts, held); err != nil {
		return err
	}
	var body bytes.Buffer
	body.WriteString("<CompleteMultipartUpload>")
	for _, p := range held {
		fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>", p.Number)
		xml.EscapeText(&body, []byte(p.ETag))
		body.WriteString("</ETag></Part>")
	}
	body.WriteString("</CompleteMultipartUpload>")
	resp, err := b.call(ctx, http.MethodPost, key, []param{{"uploadId", uploadID}},
		[]param{{"Content-Type", "application/xml"}}, body.Bytes())
	if err != nil {
		return storeError(op, "cannot complete the upload", err)
	}
	gen := resp.Header.Get("x-goog-generation")
	var res struct {
		ETag string `xml:"ETag"`
	}
	if err := decode(resp, &res); err != nil {
		return storeError(op, "cannot complete the upload", err)
	}
	if sum == nil {
		return nil
	}
	if gen == "" {
		b.deleteObject(ctx, key, "")
		return signet.E(op, signet.Unavailable, "the store answered the completion without a generation; the object was deleted", nil)
	}
	return b.verifySHA256(ctx, key, gen, sum)
}

// matchParts checks that the client's list names exactly the parts held.
func matchParts(op string, parts, held []driver.Part) error {
	if len(parts) != len(held) {
		return signet.E(op, signet.Invalid, fmt.Sprintf("the store holds %d parts of the upload; %d listed", len(held), len(parts)), nil)
	}
	for i, p := range parts {
		h := held[i]
		switch {
		case h.Number != p.Number:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d is missing", p.Number), nil)
		case subtle.ConstantTimeCompare([]byte(strings.Trim(p.ETag, `"`)), []byte(strings.Trim(h.ETag, `"`))) != 1:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d: the ETag does not match the part the store holds", p.Number), nil)
		case p.Size != 0 && h.Size != p.Size:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d has %d bytes, want %d; upload it again", p.Number, h.Size, p.Size), nil)
		}
	}
	return nil
}

// verifySHA256 reads generation gen of key back and compares its SHA-256
// with want (see CompleteMultipart).
func (b *Backend) verifySHA256(ctx context.Context, key, gen string, want []byte) error {
	const op = "gcsblob.CompleteMultipart"
	got, err := b.hashObject(ctx, key, gen)
	switch {
	case isStatus(err, http.StatusPreconditionFailed, http.StatusNotFound):
		return signet.E(op, signet.Conflict, "the object was replaced or deleted while its checksum was verified", err)
	case err != nil:
		b.deleteObject(ctx, key, gen)
		return signet.E(op, signet.Unavailable, "cannot read the object back to verify its sha256; it was deleted, upload it again", err)
	case subtle.ConstantTimeCompare(got, want) != 1:
		if err := b.deleteObject(ctx, key, gen); err != nil && !isStatus(err, http.StatusPreconditionFailed, http.StatusNotFound) {
			return signet.E(op, signet.Unavailable, "the object does not match the declared sha256 and could not be deleted", err)
		}
		return signet.E(op, signet.ChecksumMismatch, "the object does not match the declared sha256; it was deleted", nil)
	}
	return nil
}

func (b *Backend) hashObject(ctx context.Context, key, gen string) ([]byte, error) {
	resp, err := b.call(ctx, http.MethodGet, key, nil, []param{{"x-goog-if-generation-match", gen}}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return nil, &transportErr{cause: err}
	}
	return h.Sum(nil), nil
}

// deleteObject removes key (only generation gen when it is not empty),
// detached from ctx's cancellation so a client that goes away does not
// leave an unverified object behind.
func (b *Backend) deleteObject(ctx context.Context, key, gen string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var headers []param
	if gen != "" {
		if _, err := strconv.ParseInt(gen, 10, 64); err != nil {
			return signet.E("gcsblob.deleteObject", signet.Internal, "the store answered a malformed generation", nil)
		}
		headers = []param{{"x-goog-if-generation-match", gen}}
	}
	resp, err := b.call(ctx, http.MethodDelete, key, nil, headers, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// AbortMultipart implements driver.Multipart with the XML API's abort
// (DELETE ?uploadId), which discards the parts. Codes: PermissionDenied for
// a key outside the bucket and prefix; NotFound when the upload does not
// exist; otherwise as storeError describes.
func (b *Backend) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	const op = "gcsblob.AbortMultipart"
	if err := b.scope().CheckKey(op, bucket, key); err != nil {
		return err
	}
	resp, err := b.call(ctx, http.MethodDelete, key, []param{{"uploadId", uploadID}}, nil, nil)
	if err != nil {
		return storeError(op, "cannot abort the upload", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}
