package testpeer

import "testing"

// TestFakeGCSVersionPinned: the skip message names the fake-gcs-server
// release install.sh builds.
func TestFakeGCSVersionPinned(t *testing.T) {
	checkPinned(t, "fakegcs_version", "SIGNET_FAKEGCS_VERSION", FakeGCSVersion,
		FakeGCSInstall, "go install github.com/fsouza/fake-gcs-server@")
}
