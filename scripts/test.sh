#!/usr/bin/env bash
# The whole test suite: the README's test command. Installs the test
# dependencies first, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keytrail-target}"
bash scripts/install-test-deps.sh
cargo test --workspace --all-features --locked --no-fail-fast
