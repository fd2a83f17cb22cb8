package fileblob

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// uploadMeta is the plan of a multipart upload, kept in
// uploads/<id>/meta.json.
type uploadMeta struct {
	Bucket      string    `json:"bucket"`
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	PartSize    int64     `json:"part_size"`
	ContentType string    `json:"content_type,omitempty"`
	SHA256      string    `json:"sha256,omitempty"` // hex
	Created     time.Time `json:"created"`
}

func (m *uploadMeta) count() int {
	return int((m.Size + m.PartSize - 1) / m.PartSize)
}

func (m *uploadMeta) partSize(n int) int64 { return storage.PartSize(m.Size, m.PartSize, n) }

const metaFile = "meta.json"

func uploadDir(id string) string { return dirUploads + "/" + id }

func partPath(id string, n int) string { return uploadDir(id) + "/" + strconv.Itoa(n) + ".part" }

// validUploadID reports whether id has the form newID returns, so that an
// id can only ever name a directory directly below uploads/.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CreateMultipart implements driver.Multipart. opts.PartSize must be the
// part size storage.PlanParts returns for opts.Size. Codes: Invalid (bucket
// name, options), InvalidKey, TooLarge (above the store's maximum object
// size), Internal.
func (s *Store) CreateMultipart(ctx context.Context, bucket, key string, opts *driver.MultipartOptions) (string, error) {
	const op = "fileblob.CreateMultipart"
	if err := checkBucket(op, bucket); err != nil {
		return "", err
	}
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	if opts == nil {
		return "", signet.E(op, signet.Invalid, "no upload options", nil)
	}
	if opts.Size > s.maxSize {
		return "", signet.E(op, signet.TooLarge, fmt.Sprintf("size exceeds the store's maximum object size of %d bytes", s.maxSize), nil)
	}
	if ps, _, err := storage.PlanParts(opts.Size, opts.PartSize); err != nil {
		return "", err
	} else if ps != opts.PartSize {
		return "", signet.E(op, signet.Invalid, "part size does not fit the object size", nil)
	}
	if ct := opts.ContentType; ct != "" {
		if err := storage.ValidateContentType(ct); err != nil {
			return "", err
		}
	}
	if opts.SHA256 != nil && len(opts.SHA256) != 32 {
		return "", signet.E(op, signet.Invalid, "sha256 must be 32 bytes", nil)
	}
	m := &uploadMeta{
		Bucket:      bucket,
		Key:         key,
		Size:        opts.Size,
		PartSize:    opts.PartSize,
		ContentType: opts.ContentType,
		SHA256:      hex.EncodeToString(opts.SHA256),
		Created:     s.now().UTC(),
	}
	data, err := json.Marshal(m)
	if err != nil {
		return "", signet.E(op, signet.Internal, "", err)
	}
	// Build the upload's directory under tmp/ and rename it into place, so
	// an upload directory always has its meta file.
	id := newID()
	tmp := path.Join(dirTmp, newID())
	if err := s.writeUploadDir(tmp, data); err != nil {
		s.root.RemoveAll(tmp)
		return "", signet.E(op, signet.Internal, "", err)
	}
	if err := s.root.Rename(tmp, uploadDir(id)); err != nil {
		s.root.RemoveAll(tmp)
		return "", signet.E(op, signet.Internal, "", err)
	}
	if err := s.syncDir(dirUploads); err != nil {
		return "", signet.E(op, signet.Internal, "", err)
	}
	return id, nil
}

func (s *Store) writeUploadDir(dir string, meta []byte) error {
	if err := s.root.Mkdir(dir, dirPerm); err != nil {
		return err
	}
	f, err := s.root.OpenFile(path.Join(dir, metaFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(meta)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return s.syncDir(dir)
}

// readMeta returns the plan of upload id, which must belong to bucket and
// key: NotFound otherwise, so an id of another bucket or key reveals
// nothing.
func (s *Store) readMeta(op, bucket, key, id string) (*uploadMeta, error) {
	notFound := signet.E(op, signet.NotFound, "no such upload", nil)
	if !validUploadID(id) {
		return nil, notFound
	}
	data, err := s.root.ReadFile(path.Join(uploadDir(id), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound
	}
	if err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}
	var m uploadMeta
	if err := json.Unmarshal(data, &m); err != nil || m.PartSize <= 0 || m.Size <= 0 {
		return nil, signet.E(op, signet.Internal, "", fmt.Errorf("upload %s: malformed meta file: %v", id, err))
	}
	if m.Bucket != bucket || m.Key != key {
		return nil, notFound
	}
	return &m, nil
}

// ListParts implements driver.Multipart. Parts carry their ETag (the quoted
// hex SHA-256 of their bytes) and size. Codes: NotFound, Internal.
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string) ([]driver.Part, error) {
	const op = "fileblob.ListParts"
	m, err := s.readMeta(op, bucket, key, uploadID)
	if err != nil {
		return nil, err
	}
	d, err := s.root.Open(uploadDir(uploadID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, signet.E(op, signet.NotFound, "no such upload", nil)
	}
	if err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}
	parts := []driver.Part{}
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".part")
		n, ok2 := canonicalInt(num, ok)
		if !ok2 || n < 1 || n > int64(m.count()) {
			continue
		}
		f, info, err := s.openPart(partPath(uploadID, int(n)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, signet.E(op, signet.Internal, "", err)
		}
		f.Close()
		parts = append(parts, driver.Part{Number: int(n), ETag: info.ETag(), Size: info.Size})
	}
	slices.SortFunc(parts, func(a, b driver.Part) int { return a.Number - b.Number })
	return parts, nil
}

// CompleteMultipart implements driver.Multipart. parts must list every part
// of the upload's plan, numbered 1..N in order, with the ETags the part
// uploads returned (quoted or not) and, when not zero, their sizes. The
// object is assembled in a temporary file, checked against sha256 and the
// checksum declared at creation, made durable and renamed into place; then
// the upload is removed. Codes: NotFound; Invalid or InvalidPart for a
// missing, extra or mismatched part; ChecksumMismatch (no object is
// written and the upload is kept so it can be aborted); Conflict when the key
// collides with a folder; Internal.
func (s *Store) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []driver.Part, sha256 []byte) error {
	const op = "fileblob.CompleteMultipart"
	mu := s.lockUpload(uploadID)
	mu.Lock()
	defer mu.Unlock()
	m, err := s.readMeta(op, bucket, key, uploadID)
	if err != nil {
		return err
	}
	if len(parts) != m.count() {
		return signet.E(op, signet.Invalid, fmt.Sprintf("the upload has %d parts; %d were listed", m.count(), len(parts)), nil)
	}
	for i, p := range parts {
		n := i + 1
		if p.Number != n {
			return signet.E(op, signet.InvalidPart, fmt.Sprintf("parts must be listed as 1 to %d in order", len(parts)), nil)
		}
		f, info, err := s.openPart(partPath(uploadID, n))
		if errors.Is(err, fs.ErrNotExist) {
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d has not been uploaded", n), nil)
		}
		if err != nil {
			return signet.E(op, signet.Internal, "", err)
		}
		f.Close()
		switch {
		case strings.Trim(p.ETag, `"`) != strings.Trim(info.ETag(), `"`):
			return signet.E(op, signet.Invalid, fmt.Sprintf("the ETag of part %d does not match the stored part", n), nil)
		case info.Size != m.partSize(n) || p.Size != 0 && p.Size != info.Size:
			return signet.E(op, signet.Invalid, fmt.Sprintf("part %d is %d bytes; %d were expected", n, info.Size, m.partSize(n)), nil)
		}
	}
	t, err := s.createTmp(false)
	if err != nil {
		return signet.E(op, signet.Internal, "", err)
	}
	for n := 1; n <= len(parts); n++ {
		if err := s.appendPart(ctx, t, uploadID, n); err != nil {
			t.discard()
			return signet.E(op, signet.ErrorCode(err), "", err)
		}
	}
	sum, err := t.finish()
	if err == nil && t.n != m.Size {
		err = fmt.Errorf("assembled %d bytes, want %d", t.n, m.Size)
	}
	if err != nil {
		t.discard()
		return signet.E(op, signet.Internal, "", err)
	}
	if sha256 != nil && !bytes.Equal(sum, sha256) || m.SHA256 != "" && hex.EncodeToString(sum) != m.SHA256 {
		t.discard()
		return signet.E(op, signet.ChecksumMismatch, "the assembled object does not match the declared SHA-256", nil)
	}
	if err := s.commitObject(t, bucket, key, m.ContentType, sum); err != nil {
		code := fsCode(err)
		if code == signet.NotFound {
			code = signet.Internal
		}
		return signet.E(op, code, fsProblem(err).detail, err)
	}
	if err := s.removeUpload(uploadID); err != nil {
		s.log.Error("fileblob: cannot remove a completed upload", "upload", uploadID, "err", err)
	}
	return nil
}

// appendPart copies the bytes of part n to t.
func (s *Store) appendPart(ctx context.Context, t *tmpFile, id string, n int) error {
	if err := ctx.Err(); err != nil {
		return signet.E("", signet.Unavailable, "the request was cancelled", err)
	}
	f, info, err := s.openPart(partPath(id, n))
	if err != nil {
		return err
	}
	defer f.Close()
	_, rerr, werr := copyContent(t, io.NewSectionReader(f, info.Offset, info.Size), info.Size)
	return errors.Join(rerr, werr)
}

// AbortMultipart implements driver.Multipart: it removes the upload and its
// parts. Codes: NotFound, Internal.
func (s *Store) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	const op = "fileblob.AbortMultipart"
	mu := s.lockUpload(uploadID)
	mu.Lock()
	defer mu.Unlock()
	if _, err := s.readMeta(op, bucket, key, uploadID); err != nil {
		return err
	}
	if err := s.removeUpload(uploadID); err != nil {
		return signet.E(op, signet.Internal, "", err)
	}
	return nil
}

// removeUpload moves the upload's directory out of uploads/ in one step,
// then deletes it. The caller holds the upload's lock.
func (s *Store) removeUpload(id string) error {
	tmp := path.Join(dirTmp, newID())
	if err := s.root.Rename(uploadDir(id), tmp); err != nil {
		return err
	}
	if err := s.syncDir(dirUploads); err != nil {
		return err
	}
	return s.root.RemoveAll(tmp)
}

// putPart stores one part of a multipart upload. The body must be exactly
// the part's size in the upload's plan (and the signed size, when bound).
func (s *Store) putPart(w http.ResponseWriter, r *http.Request, c *claims, a *access) *problem {
	const op = "fileblob.PutPart"
	m, err := s.readMeta(op, c.Bucket, c.Key, c.UploadID)
	if signet.ErrorCode(err) == signet.NotFound {
		return newProblem(http.StatusNotFound, codeNotFound, "no such upload")
	}
	if err != nil {
		return &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: err}
	}
	if c.PartNumber > m.count() {
		return newProblem(http.StatusBadRequest, codeInvalidPart, fmt.Sprintf("the upload has %d parts", m.count()))
	}
	want := m.partSize(c.PartNumber)
	if c.Size >= 0 && c.Size != want {
		return newProblem(http.StatusBadRequest, codeSizeMismatch, "the URL's size does not match the part's size in the upload")
	}
	if c.HasContentType {
		if _, p := checkContentType(r, c); p != nil {
			return p
		}
	}
	t, sum, p := s.receive(r, a, true, want, want, c.SHA256)
	if p != nil {
		return p
	}
	mu := s.lockUpload(c.UploadID)
	mu.Lock()
	defer mu.Unlock()
	// The upload may have been completed or aborted meanwhile.
	if _, err := s.root.Stat(path.Join(uploadDir(c.UploadID), metaFile)); err != nil {
		t.discard()
		return newProblem(http.StatusNotFound, codeNotFound, "no such upload")
	}
	if err := t.commit(partPath(c.UploadID, c.PartNumber)); err != nil {
		return &problem{status: http.StatusInternalServerError, code: codeInternal, detail: "internal error", err: err}
	}
	w.Header().Set("ETag", etag(sum))
	w.WriteHeader(http.StatusOK)
	return nil
}
