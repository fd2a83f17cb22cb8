//go:build !linux

package testpeer

import "os/exec"

// setDeathSignal does nothing where the kernel cannot kill a child with
// its parent; a test binary that dies without cleanups leaves the server
// running.
func setDeathSignal(*exec.Cmd) {}
