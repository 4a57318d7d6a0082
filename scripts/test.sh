#!/usr/bin/env bash
# Builds and runs the whole test suite (installs liblua5.4-dev first when missing): the C pattern
# matcher against Lua's own string library, the prelude's sandbox under plain Lua, then every
# Swift test. The Swift run comes last so its summary is the closing line.
#
# Redis tests use the server named by GATEHOUSE_TEST_REDIS (redis://127.0.0.1:PORT); without
# one, a private redis-server is started here on a free loopback port and stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/ensure-packages.sh
ensure_packages liblua5.4-dev lua5.4 pkg-config libhiredis-dev redis-server
if [ -z "${GATEHOUSE_TEST_REDIS:-}" ]; then
  redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis_pid_file="${TMPDIR:-/tmp}/gatehouse-test-redis-$redis_port.pid"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$redis_pid_file"
  trap 'kill "$(cat "$redis_pid_file")" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export GATEHOUSE_TEST_REDIS="redis://127.0.0.1:$redis_port"
fi
bash Tests/CPattern/run.sh
sh Tests/PreludeLua/run.sh
swift build --build-tests
swift test --skip-build
