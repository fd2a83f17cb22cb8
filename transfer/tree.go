package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// DefaultFiles is the number of files DownloadDir moves at once.
const DefaultFiles = 4

// DirOptions tunes DownloadDir. The embedded Options apply to each file
// (its Progress, if set, is ignored: use Start).
type DirOptions struct {
	Options
	// Files is the number of files moved at once; 0 means DefaultFiles.
	Files int
	// Start, when set, is called as a file's download starts and may
	// return a progress function for it (see Options.Progress).
	Start func(key, path string) func(done, total int64)
	// Done, when set, is called as each file is downloaded, found
	// complete already, or fails. Calls are serialized.
	Done func(*FileResult)
}

// FileResult is the outcome for one object of a DownloadDir.
type FileResult struct {
	// Key is the object's key in the team's space; Path the local file.
	Key  string
	Path string
	// Skipped is set when the file was already complete (see
	// DownloadDir) and was not downloaded again.
	Skipped bool
	// Result describes the download (nil when skipped or failed).
	Result *Result
	// Err is why the file failed (nil otherwise).
	Err     error
	Elapsed time.Duration
}

// DirResult describes a DownloadDir.
type DirResult struct {
	// Files are in key order.
	Files                   []*FileResult
	Copied, Skipped, Failed int
	// Bytes is the size of the files downloaded (not those skipped).
	Bytes int64
}

// remoteObject is one listed object to download.
type remoteObject struct {
	info sighttp.ObjectInfo
	rel  string // path below the local directory, "/"-separated
}

// DownloadDir downloads every object of team whose key starts with
// prefix into the local directory dir (created if missing), at the path
// of the key after prefix. A prefix that is not empty and does not end
// with "/" is taken as a folder: "runs/42" downloads the keys below
// "runs/42/". Nothing is written unless every key maps to a path inside
// dir: a key whose rest is absolute, holds a ".." segment, an empty
// segment or a backslash, or is not a local name on this system (see
// filepath.IsLocal) fails the whole copy with Invalid before any byte
// moves. Files are written through an os.Root on dir, so a symbolic link
// inside dir cannot lead a write outside it either.
//
// Files move o.Files at a time, each as DownloadFile moves one (into a
// temporary file renamed into place when complete, checked against the
// SHA-256 signet reports). A rerun skips files already complete: a regular
// file of the object's size whose SHA-256 matches the one the listing
// reports, or, when the listing reports none (S3 lists no checksums), whose
// modification time is the object's last-modified time, which DownloadDir
// gives every file it writes. A file that fails does not stop the others;
// DownloadDir then returns the result and an error with the first
// failure's code saying how many failed.
func DownloadDir(ctx context.Context, c *sighttp.Client, team, prefix, dir string, o *DirOptions) (*DirResult, error) {
	const op = "transfer.DownloadDir"
	var do DirOptions
	if o != nil {
		do = *o
	}
	opts, err := do.Options.withDefaults(op)
	if err != nil {
		return nil, err
	}
	opts.Progress = nil
	files := do.Files
	switch {
	case files < 0:
		return nil, &signet.Error{Op: op, Code: signet.Invalid, Msg: "files must not be negative"}
	case files == 0:
		files = DefaultFiles
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	objs, err := listTree(ctx, c, team, prefix, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, &signet.Error{Op: op, Code: signet.Invalid, Msg: fmt.Sprintf("cannot create %s", dir), Err: err}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &signet.Error{Op: op, Code: signet.Invalid, Msg: fmt.Sprintf("cannot open %s", dir), Err: err}
	}
	defer root.Close()

	res := &DirResult{Files: make([]*FileResult, len(objs))}
	var mu sync.Mutex // serializes Done and the counts
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(files, max(len(objs), 1)) {
		wg.Go(func() {
			for i := range next {
				fr := downloadOne(ctx, c, team, root, dir, objs[i], opts, do.Start)
				mu.Lock()
				res.Files[i] = fr
				switch {
				case fr.Err != nil:
					res.Failed++
				case fr.Skipped:
					res.Skipped++
				default:
					res.Copied++
					res.Bytes += fr.Result.Size
				}
				if do.Done != nil {
					do.Done(fr)
				}
				mu.Unlock()
			}
		})
	}
	var cancelled error
	for i := range objs {
		if ctx.Err() != nil {
			cancelled = context.Cause(ctx)
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if cancelled != nil {
		return res, cancelled
	}
	if res.Failed > 0 {
		var first error
		for _, f := range res.Files {
			if f != nil && f.Err != nil {
				first = f.Err
				break
			}
		}
		code := signet.ErrorCode(first)
		if code == "" {
			code = signet.Internal
		}
		return res, &signet.Error{Op: op, Code: code, Msg: fmt.Sprintf("%d of %d files failed; first: %s", res.Failed, len(objs), signet.ErrorMessage(first)), Err: first}
	}
	return res, nil
}

// listTree lists every object below prefix and maps each to its local
// path, refusing the whole listing when one would leave the directory.
func listTree(ctx context.Context, c *sighttp.Client, team, prefix string, opts Options) ([]remoteObject, error) {
	const op = "transfer.DownloadDir"
	j := &job{op: op, c: c, team: team, key: prefix, o: opts}
	var objs []remoteObject
	var bad []string
	cursor := ""
	for {
		var page *sighttp.ObjectList
		err := j.api(ctx, func() (err error) {
			page, err = c.ListObjects(ctx, team, prefix, cursor, 0)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, o := range page.Objects {
			rel, ok := strings.CutPrefix(o.Key, prefix)
			if !ok || !localName(rel) {
				bad = append(bad, fmt.Sprintf("%q", o.Key))
				continue
			}
			objs = append(objs, remoteObject{info: o, rel: rel})
		}
		if page.NextCursor == "" {
			break
		}
		if page.NextCursor == cursor {
			return nil, &signet.Error{Op: op, Code: signet.Internal, Msg: "the server's listing does not advance"}
		}
		cursor = page.NextCursor
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 3 {
			more = fmt.Sprintf(" and %d more", len(bad)-3)
			bad = bad[:3]
		}
		return nil, &signet.Error{Op: op, Code: signet.Invalid,
			Msg: fmt.Sprintf("refusing to download %s/%s: keys would be written outside the directory: %s%s", team, prefix, strings.Join(bad, ", "), more)}
	}
	return objs, nil
}

// localName reports whether rel, the rest of a key after the prefix, names
// a file inside the destination directory on this system.
func localName(rel string) bool {
	if rel == "" || strings.ContainsRune(rel, '\\') || strings.HasPrefix(rel, "/") {
		return false
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return filepath.IsLocal(filepath.FromSlash(rel))
}

// downloadOne downloads one object below root unless it is complete.
func downloadOne(ctx context.Context, c *sighttp.Client, team string, root *os.Root, dir string, obj remoteObject, opts Options, start func(key, path string) func(done, total int64)) *FileResult {
	const op = "transfer.DownloadDir"
	began := time.Now()
	name := filepath.FromSlash(obj.rel)
	fr := &FileResult{Key: obj.info.Key, Path: filepath.Join(dir, name)}
	defer func() { fr.Elapsed = time.Since(began) }()
	if ctx.Err() != nil {
		fr.Err = context.Cause(ctx)
		return fr
	}
	if complete(root, name, &obj.info) {
		fr.Skipped = true
		return fr
	}
	if start != nil {
		opts.Progress = start(fr.Key, fr.Path)
	}
	d, err := newDownloader(op, c, team, obj.info.Key, &opts)
	if err == nil {
		fr.Result, err = downloadRoot(ctx, d, root, name)
	}
	if err != nil {
		fr.Err = err
		return fr
	}
	if lm := obj.info.LastModified; lm != nil {
		// Marks the file as this version of the object, for a rerun.
		root.Chtimes(name, time.Now(), *lm)
	}
	return fr
}

// complete reports whether the file name below root already holds the
// object described by o (see DownloadDir).
func complete(root *os.Root, name string, o *sighttp.ObjectInfo) bool {
	fi, err := root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != o.Size {
		return false
	}
	if o.SHA256 != "" {
		f, err := root.Open(name)
		if err != nil {
			return false
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return false
		}
		return hex.EncodeToString(h.Sum(nil)) == strings.ToLower(o.SHA256)
	}
	// Exactly the time DownloadDir set: a file system that keeps coarser
	// times makes the file be fetched again, never wrongly skipped.
	return o.LastModified != nil && fi.ModTime().Equal(*o.LastModified)
}

// downloadRoot is DownloadFile for a file below root: the bytes go to
// name+".signet-part", renamed to name once complete and checked.
func downloadRoot(ctx context.Context, d *downloader, root *os.Root, name string) (*Result, error) {
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o777); err != nil {
			return nil, d.errorf(signet.Conflict, err, "cannot create the folder of %s: %s", name, pathError(err))
		}
	}
	tmp := name + ".signet-part"
	f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return nil, d.errorf(signet.Conflict, err, "cannot write %s: %s", tmp, pathError(err))
	}
	res, err := d.toTemp(ctx, f, func() error {
		if err := root.Rename(tmp, name); err != nil {
			return d.errorf(signet.Conflict, err, "cannot move the download into place at %s: %s", name, pathError(err))
		}
		return nil
	}, func() { root.Remove(tmp) })
	if err != nil {
		return nil, err
	}
	if dir, err := root.Open(path.Dir(filepath.ToSlash(name))); err == nil {
		dir.Sync()
		dir.Close()
	}
	return res, nil
}

// pathError is the system's reason in a file error, without the path
// (which the message names already).
func pathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}
