#!/usr/bin/env bash
# Builds and runs the whole test suite (installs liblua5.4-dev first when missing): the C pattern
# matcher against Lua's own string library, the prelude's sandbox under plain Lua, then every
# Swift test. The Swift run comes last so its summary is the closing line.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/ensure-packages.sh
ensure_packages liblua5.4-dev lua5.4 pkg-config
bash Tests/CPattern/run.sh
sh Tests/PreludeLua/run.sh
swift build --build-tests
swift test --skip-build
