package fileblob

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

var (
	_ driver.Lister = (*Store)(nil)
	_ driver.Stater = (*Store)(nil)
)

// List implements driver.Lister. It walks objects/<bucket>/ from the
// deepest folder the prefix names, visiting each folder's entries in the
// byte order of the keys they hold (a folder "a" sorts as "a/"), so keys
// come out in ascending order without reading the whole tree, and folders
// that hold only keys at or before the cursor are not opened. The cursor
// is the last key of the page before. SHA256 and ETag come from the
// object's metadata when it describes the file (they are the same
// checksum); entries that are not regular files are left out. Codes:
// Invalid for a bad bucket name or prefix; Internal when the directory
// cannot be read.
func (s *Store) List(ctx context.Context, bucket string, o *driver.ListOptions) (*driver.ListPage, error) {
	const op = "fileblob.List"
	if err := checkBucket(op, bucket); err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	dir := ""
	if i := strings.LastIndexByte(o.Prefix, '/'); i >= 0 {
		dir = o.Prefix[:i]
		for seg := range strings.SplitSeq(dir, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return nil, signet.E(op, signet.Invalid, "malformed prefix", nil)
			}
		}
	}
	l := &walker{s: s, ctx: ctx, bucket: bucket, prefix: o.Prefix, after: o.Cursor, limit: limit, page: &driver.ListPage{}}
	if err := l.walk(dir); err != nil && !errors.Is(err, errPageFull) {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, signet.E(op, signet.Internal, "cannot list the store's directory", err)
	}
	return l.page, nil
}

var errPageFull = errors.New("page full")

// walker lists one page.
type walker struct {
	s      *Store
	ctx    context.Context
	bucket string
	prefix string // full keys must start with it
	after  string // full keys must sort after it
	limit  int
	page   *driver.ListPage
}

type walkEntry struct {
	key   string
	sort  string // key, with "/" after a folder's
	isDir bool
}

// walk visits the folder dir ("" for the bucket's root) in key order.
func (l *walker) walk(dir string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	name := objectPath(l.bucket, dir)
	if dir == "" {
		name = strings.TrimSuffix(name, "/")
	}
	f, err := l.s.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isConflict(err) {
			return nil // nothing there
		}
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	list := make([]walkEntry, 0, len(ents))
	for _, e := range ents {
		key := e.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		switch {
		case e.IsDir():
			list = append(list, walkEntry{key: key, sort: key + "/", isDir: true})
		case e.Type().IsRegular():
			list = append(list, walkEntry{key: key, sort: key})
		}
	}
	slices.SortFunc(list, func(a, b walkEntry) int { return strings.Compare(a.sort, b.sort) })
	for _, e := range list {
		if e.isDir {
			p := e.sort
			if !strings.HasPrefix(p, l.prefix) && !strings.HasPrefix(l.prefix, p) {
				continue // no key below it has the prefix
			}
			if l.after >= p && !strings.HasPrefix(l.after, p) {
				continue // every key below it sorts before the cursor
			}
			if err := l.walk(e.key); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(e.key, l.prefix) || e.key <= l.after {
			continue
		}
		info, err := l.s.stat(l.bucket, e.key)
		if err != nil {
			continue // gone or replaced by a folder meanwhile
		}
		l.page.Objects = append(l.page.Objects, *info)
		if len(l.page.Objects) == l.limit {
			l.page.Next = e.key
			return errPageFull
		}
	}
	return nil
}

// Stat implements driver.Stater from the object's file and metadata.
// Codes: Invalid for a bad bucket name; InvalidKey; NotFound; Internal.
func (s *Store) Stat(ctx context.Context, bucket, key string) (*driver.ObjectInfo, error) {
	const op = "fileblob.Stat"
	if err := checkBucket(op, bucket); err != nil {
		return nil, err
	}
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	info, err := s.stat(bucket, key)
	switch {
	case err == nil:
		return info, nil
	case errors.Is(err, fs.ErrNotExist) || isConflict(err) || isNameTooLong(err):
		return nil, signet.E(op, signet.NotFound, "no such object", nil)
	}
	return nil, signet.E(op, signet.Internal, "cannot read the object's metadata", err)
}

func (s *Store) stat(bucket, key string) (*driver.ObjectInfo, error) {
	f, info, err := s.openObject(bucket, key)
	if err != nil {
		return nil, err
	}
	f.Close()
	o := &driver.ObjectInfo{Key: key, Size: info.Size, LastModified: info.ModTime.UTC()}
	if info.SHA256 != nil {
		o.SHA256, o.ETag = info.SHA256, etag(info.SHA256)
	}
	return o, nil
}
