//go:build !(linux || darwin || freebsd)

package fileblob

// freeSpace is not measured on this system.
func freeSpace(string) (uint64, bool) { return 0, false }
