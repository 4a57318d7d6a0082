#!/bin/sh
# Checks the prelude's Lua without building Gatehouse: every chunk compiles (luac5.4 -p) and
# the sandbox tests pass under plain lua5.4 with a mock host. Run from anywhere.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
prelude="$root/Sources/GatehousePolicies/Lua/prelude"
for file in "$prelude"/*.lua; do
  luac5.4 -p "$file"
done
exec lua5.4 "$root/Tests/PreludeLua/sandbox_test.lua" "$prelude"
