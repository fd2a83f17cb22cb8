package auditsink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/signetdev/signet/internal/atomicfile"
)

// fileSink appends JSON lines to a file, fsyncs every batch, and rotates
// the file by size. It remembers the seq of its last line, so entries
// delivered again after a crash (written, cursor not yet saved) are
// skipped: the file holds each entry once.
type fileSink struct {
	path       string
	maxSize    int64
	maxBackups int
	now        func() time.Time
	f          *os.File
	size       int64
	last       int64 // seq of the last line in the file, 0 if unknown
}

// backupLayout names rotated files: audit-20260102T150405.000000Z.jsonl
// for audit.jsonl. The names sort by time.
const backupLayout = "20060102T150405.000000Z"

func openFile(c Config, now func() time.Time) (*fileSink, error) {
	s := &fileSink{path: c.Path, maxSize: int64(c.MaxSize), maxBackups: c.MaxBackups, now: now}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the file for appending. A last line cut short by a crash is
// removed; the seq of the last whole line is remembered.
func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := fi.Size()
	s.last = 0
	if size > 0 {
		// The last 64 KiB hold the last line: lines are a few KiB at most.
		n := min(size, 64<<10)
		tail := make([]byte, n)
		if _, err := f.ReadAt(tail, size-n); err != nil {
			f.Close()
			return err
		}
		if end := bytes.LastIndexByte(tail, '\n'); end != len(tail)-1 {
			// Cut the partial line.
			size = size - n + int64(end+1)
			if err := f.Truncate(size); err != nil {
				f.Close()
				return fmt.Errorf("removing a partial last line: %w", err)
			}
			tail = tail[:end+1]
		}
		if len(tail) > 0 {
			start := bytes.LastIndexByte(tail[:len(tail)-1], '\n') + 1
			var v struct{ Seq int64 }
			if json.Unmarshal(tail[start:], &v) == nil {
				s.last = v.Seq
			}
		}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, size
	return nil
}

func (s *fileSink) write(_ context.Context, lines []line) (int, error) {
	if s.f == nil {
		// A rotation failed half way; try again.
		if err := s.open(); err != nil {
			return 0, err
		}
	}
	var buf []byte
	done := 0 // lines made durable
	skipped := 0
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := s.f.Write(buf); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		s.size += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	pendingLast := s.last
	for i, l := range lines {
		if l.seq <= s.last && s.last > 0 {
			skipped = i + 1 // already in the file
			continue
		}
		if s.size+int64(len(buf)) > 0 && s.size+int64(len(buf)+len(l.data)) > s.maxSize {
			if err := flush(); err != nil {
				return max(done, skipped), err
			}
			s.last, done = pendingLast, i
			if err := s.rotate(); err != nil {
				return done, err
			}
		}
		buf = append(buf, l.data...)
		pendingLast = l.seq
	}
	if err := flush(); err != nil {
		return max(done, skipped), err
	}
	s.last = pendingLast
	return len(lines), nil
}

// rotate renames the file aside, starts a new one, and removes the
// oldest rotated files beyond maxBackups.
func (s *fileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	dir, base := filepath.Split(s.path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	name := filepath.Join(dir, stem+"-"+s.now().UTC().Format(backupLayout)+ext)
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); os.IsNotExist(err) {
			break
		}
		name = filepath.Join(dir, fmt.Sprintf("%s-%s.%d%s", stem, s.now().UTC().Format(backupLayout), i, ext))
	}
	if err := os.Rename(s.path, name); err != nil {
		return err
	}
	last := s.last
	if err := s.open(); err != nil {
		return err
	}
	s.last = last
	if err := atomicfile.SyncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	if s.maxBackups > 0 {
		backups := s.backups()
		for len(backups) > s.maxBackups {
			os.Remove(backups[0])
			backups = backups[1:]
		}
	}
	return nil
}

// backups lists rotated files, oldest first.
func (s *fileSink) backups() []string {
	dir, base := filepath.Split(s.path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(stem)+"-*"+globEscape(ext)))
	var out []string
	for _, m := range matches {
		ts := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), stem+"-"), ext)
		if len(ts) >= len(backupLayout) {
			if _, err := time.Parse(backupLayout, ts[:len(backupLayout)]); err == nil {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// writerSink writes lines to a stream such as standard output. It cannot
// tell what a reader received, so it does not skip repeats.
type writerSink struct{ w io.Writer }

func (s *writerSink) write(_ context.Context, lines []line) (int, error) {
	var buf []byte
	for _, l := range lines {
		buf = append(buf, l.data...)
	}
	if _, err := s.w.Write(buf); err != nil {
		return 0, err
	}
	return len(lines), nil
}

func (s *writerSink) close() error { return nil }
