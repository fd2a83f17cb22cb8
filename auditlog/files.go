package auditlog

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// CheckpointFiles returns the names of the checkpoint files in dir, in the
// order of their Seq and time (the order their names sort in). A missing
// dir has none. The names are not verified: read and Verify them.
func CheckpointFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, checkpointPrefix) && strings.HasSuffix(n, checkpointSuffix) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}
