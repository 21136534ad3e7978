#!/usr/bin/env bash
# Installs keytrail from this checkout and scans a demo tree full of fake
# credentials (generated now by the test-kit; nothing here is real).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keytrail-target}"
cargo install --locked --quiet --path crates/keytrail-cli
demo="${1:-${TMPDIR:-/tmp}/keytrail-demo}"
cargo run --quiet --release -p keytrail-testkit --example make-demo -- "$demo"
echo "+ keytrail scan $demo"
status=0
keytrail scan "$demo" || status=$?
echo "keytrail exited with $status (0 = clean, 1 = findings, 2 = error)"
[ "$status" -le 1 ]
