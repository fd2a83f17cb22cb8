package testpeer

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// VectorsEnv names a directory holding the shared signing test vectors,
// for checkouts that do not sit beside ../shared/vectors.
const VectorsEnv = "SIGNET_VECTORS_DIR"

// Vectors returns the path of rel (slash-separated) below the signing test
// vectors: $SIGNET_VECTORS_DIR when set, else ../shared/vectors beside the
// repository. When the file is missing it skips tb, or fails it when
// SIGNET_TEST_PEERS=require. The vectors are read in place, never copied
// into the repository.
func Vectors(tb testing.TB, rel string) string {
	tb.Helper()
	dir := os.Getenv(VectorsEnv)
	if dir == "" {
		_, file, _, _ := runtime.Caller(0) // <repo>/internal/testpeer/vectors.go
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors")
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		absent(tb, "signing vectors ("+p+")", "they live in ../shared/vectors beside the checkout; set "+VectorsEnv+" to their directory")
	}
	return p
}
