package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/atomicfile"
)

// Resume state files.
//
// A chunked upload of a file made with Options.ResumeDir set leaves one
// small JSON file in that directory while it is in flight. Its name is a
// hash of the server's address, the team, the key, the file's absolute path,
// size and modification time, and the part size asked for, so a rerun of
// the same copy of the same unchanged file finds it and no other run does.
// It records the upload's id, its plan and the file's SHA-256, and nothing
// secret: no API key, no URL. It is written (to a temporary file, renamed
// into place) right after the server creates the session, and removed when
// the upload completes or is aborted.
const (
	// stateVersion is the format of state files; files of another version
	// are ignored.
	stateVersion = 1
	// stateSuffix ends the name of every state file.
	stateSuffix = ".upload.json"
	// resumeMargin: a session that ends this soon is not resumed; a fresh
	// one is started instead.
	resumeMargin = time.Minute
)

// resumeState is the content of a state file.
type resumeState struct {
	Version int `json:"version"`
	// Target is a hash of the server, team, key and absolute path: the
	// states of one copy share it whatever the file's size and time.
	Target    string    `json:"target"`
	Team      string    `json:"team"`
	Key       string    `json:"key"`
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	ModTime   time.Time `json:"mod_time"`
	PartSize  int64     `json:"part_size"` // as asked for; 0: the server's choice
	SHA256    string    `json:"sha256"`    // hex, of the file
	UploadID  string    `json:"upload_id"`
	PlanSize  int64     `json:"plan_part_size"` // as the server planned
	PartCount int       `json:"part_count"`
	ExpiresAt time.Time `json:"expires_at"` // the session's deadline
}

// resumer finds and keeps the state file of one upload of a file.
type resumer struct {
	dir  string
	path string // of the state file
	id   resumeState
}

// newResumer returns the resumer for uploading the file at path, described
// by fi, as key of team through the server at addr with part size
// partSize.
func newResumer(dir, addr, team, key, path string, fi fs.FileInfo, partSize int64) (*resumer, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	id := resumeState{
		Version: stateVersion,
		Target:  digest(addr, team, key, abs),
		Team:    team, Key: key, Path: abs,
		Size: fi.Size(), ModTime: fi.ModTime().UTC(), PartSize: partSize,
	}
	name := digest(id.Target, fmt.Sprint(id.Size), fmt.Sprint(id.ModTime.UnixNano()), fmt.Sprint(partSize))
	return &resumer{dir: dir, path: filepath.Join(dir, name+stateSuffix), id: id}, nil
}

// digest returns a hex hash of fields that no separator can confuse.
func digest(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil)[:20])
}

// same reports whether s describes the same copy of the same file as r.
func (r *resumer) same(s *resumeState) bool {
	return s.Version == stateVersion && s.Target == r.id.Target && s.Team == r.id.Team &&
		s.Key == r.id.Key && s.Path == r.id.Path && s.Size == r.id.Size &&
		s.ModTime.Equal(r.id.ModTime) && s.PartSize == r.id.PartSize
}

// load returns the state of an earlier run of this upload, or nil. A file
// that cannot be read or does not match is removed.
func (r *resumer) load() *resumeState {
	s, err := readState(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil || !r.same(s) || s.UploadID == "" || !validSHA256(s.SHA256):
		r.remove()
		return nil
	}
	return s
}

func readState(path string) (*resumeState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s resumeState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// save records the session info of this upload of a file whose SHA-256 is
// sum. The file is written in full under a temporary name and renamed, so
// a crash leaves either no state or a complete one.
func (r *resumer) save(info *sighttp.UploadInfo, sum string) error {
	s := r.id
	s.SHA256, s.UploadID = sum, info.ID
	s.PlanSize, s.PartCount, s.ExpiresAt = info.PartSize, info.PartCount, info.ExpiresAt.UTC()
	b, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(r.path, append(b, '\n'), 0o600)
}

// remove deletes the state file, if any.
func (r *resumer) remove() { os.Remove(r.path) }

// sweep removes the state files that an upload of this file makes useless:
// those of the same copy whose file has changed since (another size or
// time) or that asked for another part size, whose sessions it aborts
// (best effort), and those of any copy whose session has ended. Temporary
// files that a crash left behind are removed too.
func (r *resumer) sweep(ctx context.Context, c *sighttp.Client) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range ents {
		p := filepath.Join(r.dir, e.Name())
		if !e.Type().IsRegular() || p == r.path {
			continue
		}
		if n := e.Name(); strings.HasPrefix(n, atomicfile.TempPrefix) && strings.Contains(n, stateSuffix+".") && strings.HasSuffix(n, ".tmp") {
			// atomicfile's temporary name for a state file.
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), stateSuffix) {
			continue
		}
		s, err := readState(p)
		switch {
		case err != nil:
			continue // another program's file, or one being replaced
		case !now.Before(s.ExpiresAt):
			os.Remove(p)
		case s.Target == r.id.Target && s.UploadID != "":
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			c.AbortUpload(actx, s.Team, s.UploadID)
			cancel()
			os.Remove(p)
		}
	}
}

// validSHA256 reports whether s is a hex SHA-256.
func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
