#!/usr/bin/env bash
# Installs the free IP-location databases (country MMDB, ASN ranges) from the
# npm packages pinned by testdata/ipintel/package-lock.json into
# testdata/ipintel/node_modules, for the tests and for the demo (which copies
# them into keytrail's cache with `keytrail intel update --from`). Installs
# npm from Debian when it is missing. Skipped when that exact lock is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm
fi
ipintel=testdata/ipintel
if ! cmp -s "$ipintel/package-lock.json" "$ipintel/node_modules/.keytrail-installed-lock" 2>/dev/null; then
  (cd "$ipintel" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$ipintel/package-lock.json" "$ipintel/node_modules/.keytrail-installed-lock"
fi
