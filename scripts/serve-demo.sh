#!/usr/bin/env bash
# Serves the default config/ + plugins/ on http://127.0.0.1:8080 with the two demo upstreams
# (sandbox on :9101, production on :9102). Installs liblua5.4-dev first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/ensure-packages.sh
ensure_packages liblua5.4-dev libhiredis-dev pkg-config
swift build --product gatehouse
exec .build/debug/gatehouse serve --demo --config config --plugins plugins "$@"
