#!/usr/bin/env bash
# Builds and runs the whole test suite (installs liblua5.4-dev first when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/ensure-packages.sh
ensure_packages liblua5.4-dev lua5.4 pkg-config
swift build --build-tests
swift test --skip-build
