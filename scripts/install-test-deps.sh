#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine. Idempotent:
# each step is skipped when its tool is already there.
set -euo pipefail

need_apt=()
# (Debian packages the tests need are added here as the test suite grows.)
for pkg in "$@"; do need_apt+=("$pkg"); done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
