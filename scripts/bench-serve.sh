#!/usr/bin/env bash
# Latency of `keytrail serve` under wrk with N findings in the store, on
# SQLite and PostgreSQL: the figures of README.md's performance table.
#
#   scripts/bench-serve.sh [sqlite|postgres|both]      (default both)
#
# Needs wrk (`apt-get install wrk`), python3, a release build of keytrail
# (`cargo build --release -p keytrail-cli`; $KEYTRAIL names another
# binary) and, for PostgreSQL, the local server of the tests
# (127.0.0.1:5432, trust authentication, user postgres: a database is made
# and dropped). Knobs: KT_SERVE_FINDINGS (100000), KT_SERVE_SECONDS per
# route (10), KT_SERVE_CONNECTIONS (4 keep-alive connections on 2 wrk
# threads).
#
# It writes a scan report of N findings (2 locations each, fake secrets
# that exist nowhere but as their fingerprints), imports it as one run
# (`keytrail import`, timed), makes a viewer token, starts `keytrail serve`
# on loopback and runs wrk against three routes in turn: the findings list
# (a page of 100 after a random id), the same filtered
# (status=open&min_severity=high) and a credential's page
# (/api/v1/findings/{fingerprint}: locations, history, exposure records).
# A route that answers anything but 2xx fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."
which_dbs=${1:-both}
n=${KT_SERVE_FINDINGS:-100000}
secs=${KT_SERVE_SECONDS:-10}
conns=${KT_SERVE_CONNECTIONS:-4}
keytrail=${KEYTRAIL:-${CARGO_TARGET_DIR:-target}/release/keytrail}

die() { echo "bench-serve: $*" >&2; exit 2; }
command -v wrk >/dev/null || die "wrk is not installed: apt-get install wrk"
command -v python3 >/dev/null || die "python3 is needed to write the report"
[ -x "$keytrail" ] || die "$keytrail: no keytrail binary: cargo build --release -p keytrail-cli, or set KEYTRAIL"
case "$which_dbs" in sqlite | postgres | both) ;; *) die "unknown back-end \`$which_dbs\` (sqlite, postgres or both)" ;; esac

work=$(mktemp -d)
server=
pgdb=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$pgdb" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# The store's key: one for the run, never a file in the user's data dir.
KEYTRAIL_STORE_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export KEYTRAIL_STORE_KEY

echo "writing a report of $n findings (2 locations each)" >&2
python3 - "$n" "$work/report.jsonl" <<'PY'
import hashlib, json, secrets, string, sys
n, out = int(sys.argv[1]), sys.argv[2]
alphabet = string.ascii_letters + string.digits
sev = ["low", "medium", "high", "critical"]
with open(out, "w") as f:
    for i in range(n):
        # A made-up value of a GitHub token's shape: only its fingerprint
        # and redacted form go into the report.
        value = "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))
        fp = hashlib.sha256(b"github.pat.classic\0" + value.encode()).hexdigest()[:32]
        for k in range(2):
            f.write(json.dumps({
                "rule_id": "github.pat.classic",
                "rule_name": "GitHub personal access token (classic)",
                "provider": "github",
                "confidence": "high",
                "severity": sev[i % 4],
                "fingerprint": fp,
                "secret_redacted": value[:4] + "…" + value[-2:],
                "path": f"services/svc{i % 97}/config/{i}-{k}.env",
                "line": i % 300 + 1,
                "column": 14,
                "offset": (i % 300) * 40,
                "snippet": "GITHUB_TOKEN=ghp_…" + value[-2:],
                "source": "file",
                "notes": ["checksum valid"],
                "occurrences": 2,
            }) + "\n")
PY

bench() {
  local label=$1 db=$2
  local t0 t1
  t0=$(date +%s.%N)
  "$keytrail" import --db "$db" --target bench/repo "$work/report.jsonl" 2>"$work/import.log" || {
    cat "$work/import.log" >&2
    die "$label: import failed"
  }
  t1=$(date +%s.%N)
  printf '%s: import of %d findings: %.1f s\n' "$label" "$n" "$(echo "$t1 - $t0" | bc)"
  local token
  token=$("$keytrail" token create --db "$db" --role viewer --name bench)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$keytrail" serve --db "$db" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
  server=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs "$base/api/v1/openapi.json" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs "$base/api/v1/openapi.json" >/dev/null || {
    cat "$work/serve.log" >&2
    die "$label: keytrail serve did not start"
  }
  local first max_id fp
  first=$(curl -fs -H "Authorization: Bearer $token" "$base/api/v1/findings?order=newest&limit=1")
  max_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["findings"][0]["id"])' <<<"$first")
  fp=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["findings"][0]["fingerprint"])' <<<"$first")
  for route in list filtered page; do
    local out
    out=$(KT_ROUTE=$route KT_MAX_ID=$max_id KT_FP=$fp wrk -t2 -c"$conns" -d"${secs}s" \
      -H "Authorization: Bearer $token" -s bench/serve/pages.lua "$base/")
    local line
    line=$(grep '^RESULT ' <<<"$out") || {
      echo "$out" >&2
      die "$label $route: wrk printed no result"
    }
    echo "$label: ${line#RESULT }"
    grep -q ' errors=0 ' <<<"$line" || die "$label $route: requests failed (see above)"
  done
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=
}

echo "keytrail $("$keytrail" --version | cut -d' ' -f2), $n findings, wrk -t2 -c$conns -d${secs}s per route, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$which_dbs" = sqlite ] || [ "$which_dbs" = both ]; then
  bench sqlite "$work/kt.db"
fi
if [ "$which_dbs" = postgres ] || [ "$which_dbs" = both ]; then
  pgdb="kt_bench_serve_$$"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $pgdb" >/dev/null ||
    die "PostgreSQL must listen on 127.0.0.1:5432 with trust authentication for user postgres"
  bench postgres "postgres://postgres@127.0.0.1:5432/$pgdb"
fi
