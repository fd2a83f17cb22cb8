package testpeer

import (
	"os"
	"strings"
	"testing"
)

// TestFakeGCSVersionPinned: the skip message names the fake-gcs-server
// release install.sh builds.
func TestFakeGCSVersionPinned(t *testing.T) {
	sh, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sh), `fakegcs_version="${SIGNET_FAKEGCS_VERSION:-`+FakeGCSVersion+`}"`) {
		t.Errorf("install.sh does not default to fake-gcs-server %s", FakeGCSVersion)
	}
	if !strings.Contains(FakeGCSInstall, "go install github.com/fsouza/fake-gcs-server@"+FakeGCSVersion) {
		t.Errorf("FakeGCSInstall does not give the pinned build command: %s", FakeGCSInstall)
	}
}
