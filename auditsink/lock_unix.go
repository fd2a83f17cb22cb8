//go:build unix

package auditsink

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path, without waiting. ok
// is false when another process holds it. The lock lasts until f is
// closed (or the process ends).
func lockFile(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}
