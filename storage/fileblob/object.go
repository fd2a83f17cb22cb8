package fileblob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
)

const (
	filePerm    = 0o600
	dirPerm     = 0o700
	octetStream = "application/octet-stream"
)

// An object is a plain file, objects/<bucket>/<key>, holding exactly its
// bytes. Its metadata sits at the same path in a mirror tree,
// meta/<bucket>/<key>: because the two trees have the same shape, a sidecar
// can never collide with a key. The sidecar records the identity of the data
// file it describes (size, modification time, file id); when it does not
// match the file (a crash between the two renames), the metadata is ignored
// and the object is served as application/octet-stream without an ETag.
// Both renames of one key happen under the key's lock, so concurrent
// uploads cannot leave a sidecar of the losing upload.
type objectMeta struct {
	ContentType string `json:"content_type,omitempty"`
	SHA256      string `json:"sha256"` // hex
	Size        int64  `json:"size"`
	ModTime     int64  `json:"mtime_ns"`
	FileID      uint64 `json:"file_id,omitempty"`
}

func newObjectMeta(ct string, sum []byte, fi fs.FileInfo) *objectMeta {
	return &objectMeta{
		ContentType: ct,
		SHA256:      hex.EncodeToString(sum),
		Size:        fi.Size(),
		ModTime:     fi.ModTime().UnixNano(),
		FileID:      fileID(fi),
	}
}

// describes reports whether m was written for the data file fi.
func (m *objectMeta) describes(fi fs.FileInfo) bool {
	return m.Size == fi.Size() && m.ModTime == fi.ModTime().UnixNano() && m.FileID == fileID(fi)
}

// objectInfo describes a stored object.
type objectInfo struct {
	ContentType string // "" when unknown
	SHA256      []byte // nil when unknown
	Size        int64
	ModTime     time.Time
}

func objectPath(bucket, key string) string { return dirObjects + "/" + bucket + "/" + key }

func objectMetaPath(bucket, key string) string { return dirMeta + "/" + bucket + "/" + key }

// openObject opens an object and returns its metadata. The caller closes
// the file. A folder is reported as not existing.
func (s *Store) openObject(bucket, key string) (*os.File, *objectInfo, error) {
	f, err := s.root.Open(objectPath(bucket, key))
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: f.Name(), Err: fs.ErrNotExist}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	info := &objectInfo{Size: fi.Size(), ModTime: fi.ModTime()}
	var m objectMeta
	if data, err := s.root.ReadFile(objectMetaPath(bucket, key)); err == nil && json.Unmarshal(data, &m) == nil && m.describes(fi) {
		if sum, err := hex.DecodeString(m.SHA256); err == nil && len(sum) == sha256.Size {
			info.ContentType, info.SHA256 = m.ContentType, sum
		}
	}
	return f, info, nil
}

// commitObject moves the finished file t into place as the object, then
// writes its metadata. Once the data is in place the object is stored: a
// failure to write the metadata is only logged.
func (s *Store) commitObject(t *tmpFile, bucket, key, ct string, sum []byte) error {
	mu := s.lockObject(bucket, key)
	mu.Lock()
	defer mu.Unlock()
	if err := t.commit(objectPath(bucket, key)); err != nil {
		return err
	}
	data, _ := json.Marshal(newObjectMeta(ct, sum, t.info))
	m, err := s.createTmp(false)
	if err == nil {
		_, err = m.Write(data)
		if err == nil {
			_, err = m.finish()
		}
		if err == nil {
			err = m.commit(objectMetaPath(bucket, key))
		} else {
			m.discard()
		}
	}
	if err != nil {
		s.log.Error("fileblob: cannot write object metadata; serving it as application/octet-stream",
			"bucket", bucket, "key", key, "err", err)
	}
	return nil
}

// A part file, uploads/<id>/<n>.part, is internal: a header of magic (8
// bytes) and the SHA-256 of the part (its ETag), then the bytes. One rename
// stores a part and its ETag together.
const (
	partMagic  = "SGNTPRT1"
	partHeader = int64(len(partMagic) + sha256.Size)
)

// partInfo describes a stored part.
type partInfo struct {
	SHA256 []byte
	Offset int64 // where the bytes start
	Size   int64
}

var errBadPart = errors.New("fileblob: malformed part file")

// openPart opens a part file and reads its header. The caller closes the
// file.
func (s *Store) openPart(name string) (*os.File, *partInfo, error) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	var h [partHeader]byte
	if err == nil {
		_, err = f.ReadAt(h[:], 0)
	}
	if err == nil && (!fi.Mode().IsRegular() || string(h[:len(partMagic)]) != partMagic) {
		err = errBadPart
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, &partInfo{SHA256: bytes.Clone(h[len(partMagic):]), Offset: partHeader, Size: fi.Size() - partHeader}, nil
}

// ETag returns the quoted hex SHA-256 of the part.
func (p *partInfo) ETag() string { return etag(p.SHA256) }

func etag(sum []byte) string { return `"` + hex.EncodeToString(sum) + `"` }

// tmpFile is a file being written under tmp/.
type tmpFile struct {
	s      *Store
	f      *os.File
	name   string // relative to the root
	header bool   // a part file: the checksum goes into its header
	h      hash.Hash
	n      int64       // content bytes written
	info   fs.FileInfo // set by finish
}

// createTmp starts a new file under tmp/: a part file when part is true,
// else a plain one.
func (s *Store) createTmp(part bool) (*tmpFile, error) {
	name := path.Join(dirTmp, newID())
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, err
	}
	t := &tmpFile{s: s, f: f, name: name, header: part, h: sha256.New()}
	if part {
		hdr := make([]byte, partHeader)
		copy(hdr, partMagic)
		if _, err := f.Write(hdr); err != nil {
			t.discard()
			return nil, err
		}
	}
	return t, nil
}

// Write appends content, hashing it.
func (t *tmpFile) Write(p []byte) (int, error) {
	n, err := t.f.Write(p)
	t.h.Write(p[:n])
	t.n += int64(n)
	return n, err
}

// finish makes the file durable and closes it, returning the SHA-256 of the
// content (which a part file also records in its header).
func (t *tmpFile) finish() ([]byte, error) {
	sum := t.h.Sum(nil)
	if t.header {
		if _, err := t.f.WriteAt(sum, int64(len(partMagic))); err != nil {
			return nil, err
		}
	}
	err := t.f.Sync()
	if err == nil {
		t.info, err = t.f.Stat()
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	t.f = nil
	return sum, err
}

// discard removes the temporary file.
func (t *tmpFile) discard() {
	if t.f != nil {
		t.f.Close()
	}
	t.s.root.Remove(t.name)
}

// commit moves the finished file t to name, creating its directory, and
// makes the rename durable. On error t is discarded.
func (t *tmpFile) commit(name string) error {
	dir := path.Dir(name)
	if err := t.s.root.MkdirAll(dir, dirPerm); err != nil {
		t.discard()
		return err
	}
	if err := t.s.root.Rename(t.name, name); err != nil {
		t.discard()
		return err
	}
	return t.s.syncDir(dir)
}

// syncDir makes changes to the entries of dir durable.
func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// isConflict reports whether err says a path is a file where a directory is
// needed or the other way round.
func isConflict(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY)
}

func isNameTooLong(err error) bool { return errors.Is(err, syscall.ENAMETOOLONG) }

// copyContent copies up to limit bytes from src to dst, telling read
// errors from write errors.
func copyContent(dst io.Writer, src io.Reader, limit int64) (n int64, readErr, writeErr error) {
	buf := make([]byte, 256<<10)
	for n < limit {
		chunk := buf[:min(int64(len(buf)), limit-n)]
		m, err := src.Read(chunk)
		if m > 0 {
			w, werr := dst.Write(chunk[:m])
			n += int64(w)
			if werr != nil {
				return n, nil, werr
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
	return n, nil, nil
}
