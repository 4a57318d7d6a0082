#!/usr/bin/env bash
# Builds and runs the differential test of the step-budgeted Lua pattern matcher
# (Sources/CGatehouseLua/gh_pattern.c) against Lua 5.4's own string library. Needs gcc,
# pkg-config and liblua5.4-dev. Exits non-zero on any failure. Optional argument: the number
# of random cases (default 200000).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${TMPDIR:-/tmp}/gatehouse-pattern-diff.$$"
trap 'rm -f "$out"' EXIT
gcc -O1 -Wall -Wextra -Werror -o "$out" Tests/CPattern/pattern_diff.c Sources/CGatehouseLua/gh_pattern.c \
  $(pkg-config --cflags --libs lua5.4)
"$out" "$@"
