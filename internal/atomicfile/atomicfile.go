// Package atomicfile writes files that survive a crash whole or not at all.
package atomicfile

import (
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file WriteFile makes, so
// that readers of a directory can skip them.
const TempPrefix = "."

// WriteFile replaces path with data: it writes a temporary file in the
// same directory (WriteTemp), renames it over path and syncs the
// directory. After a crash, path holds either the old or the new bytes; a
// temporary file may be left behind, never a torn path.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := WriteTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Create creates path with data, synced, unless path exists: then it
// returns an error that wraps fs.ErrExist and leaves path as it is. Of
// processes that create the same path at once, exactly one succeeds, and
// no reader ever sees path empty or half written (the file is written
// under a temporary name and linked into place).
func Create(path string, data []byte, perm os.FileMode) error {
	tmp, err := WriteTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteTemp writes data, synced and with mode perm, to a new temporary
// file beside path (named TempPrefix + base + ".*.tmp") and returns its
// name, for a caller that renames it over path later.
func WriteTemp(path string, data []byte, perm os.FileMode) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// SyncDir makes the creations, renames and removals in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
