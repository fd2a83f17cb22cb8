//go:build !unix

package auditsink

import "os"

// lockFile opens path. Without flock, two processes sharing a data
// directory are not kept from running the same sink.
func lockFile(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	return f, err == nil, err
}
