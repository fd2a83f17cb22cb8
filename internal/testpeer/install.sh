#!/usr/bin/env bash
# Builds the test peers that internal/testpeer starts, into
# ~/.cache/signet/bin (or $SIGNET_BIN_DIR), unless they are already there.
# Idempotent: a second run does nothing. CI calls it before `go test` so
# that SIGNET_TEST_PEERS=require finds every peer.
#
#   MinIO            go install github.com/minio/minio@${SIGNET_MINIO_VERSION:-<pinned below>}
#                    (about 12 minutes on 2 cores the first time; cached after)
#   fake-gcs-server  go install github.com/fsouza/fake-gcs-server@${SIGNET_FAKEGCS_VERSION:-v1.56.1}
#                    (about a minute)
#   Azurite          install-azurite.sh (npm; about 2 minutes)
set -euo pipefail

bin_dir="${SIGNET_BIN_DIR:-$HOME/.cache/signet/bin}"
# The MinIO release the S3 tests were proven against (.ci/run pins the same).
minio_version="${SIGNET_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
fakegcs_version="${SIGNET_FAKEGCS_VERSION:-v1.56.1}"

mkdir -p "$bin_dir"

# Concurrent runs (several test suites, or a developer and CI on one
# machine) wait for each other instead of building MinIO twice.
exec 9>"$bin_dir/.install.lock"
flock 9

if [ -x "$bin_dir/minio" ]; then
  echo "testpeer: minio already at $bin_dir/minio; nothing to do"
else
  echo "testpeer: building minio@$minio_version into $bin_dir (about 12 minutes on 2 cores)"
  # GOTOOLCHAIN=auto lets go fetch the toolchain minio's go.mod asks for
  # when it is newer than the installed one (through the module proxy).
  # go install writes the binary only once the build has succeeded, so an
  # interrupted run leaves nothing half-built behind.
  GOTOOLCHAIN=auto GOBIN="$bin_dir" go install "github.com/minio/minio@$minio_version"
  echo "testpeer: built $("$bin_dir/minio" --version | head -n 1)"
fi

if [ -x "$bin_dir/fake-gcs-server" ]; then
  echo "testpeer: fake-gcs-server already at $bin_dir/fake-gcs-server; nothing to do"
else
  echo "testpeer: building fake-gcs-server@$fakegcs_version into $bin_dir"
  GOTOOLCHAIN=auto GOBIN="$bin_dir" go install "github.com/fsouza/fake-gcs-server@$fakegcs_version"
fi

bash "$(dirname "$0")/install-azurite.sh"
