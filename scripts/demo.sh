#!/usr/bin/env bash
# Installs keytrail from this checkout, scans a demo tree full of fake
# credentials, then runs abuse detection on three weeks of generated CloudTrail
# with injected attacks (both generated now by the test-kit; nothing is real),
# with the SigmaHQ rules keytrail ships and IP intelligence in its cache.
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

trail="${demo}-cloudtrail"
cargo run --quiet --release -p keytrail-testkit --example make-cloudtrail-demo -- "$trail"
# IP intelligence for detect, in keytrail's cache. On a connected machine
# `keytrail intel update` downloads the latest free databases; here they come
# from the npm registry (the only network this project's machines reach): the
# pinned ip-location-db packages plus the X4BNet lists of testdata/ipintel,
# installed with --from as on an air-gapped machine.
bash scripts/install-ipintel.sh
echo "+ keytrail intel update --from testdata/ipintel"
keytrail intel update --from testdata/ipintel
echo "+ keytrail detect $trail -o $trail/alerts.txt   # embedded SigmaHQ rules, cached IP intelligence"
status=0
keytrail detect "$trail" -o "$trail/alerts.txt" || status=$?
head -n 24 "$trail/alerts.txt"
echo "... (all alerts in $trail/alerts.txt; --format jsonl or ocsf for machines)"
echo "keytrail detect exited with $status (0 = no alerts, 1 = alerts, 2 = error)"
[ "$status" -le 1 ]
