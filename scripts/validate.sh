#!/usr/bin/env bash
# Project lints that the compiler cannot enforce. Run by CI (.ci/run) and before commits.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

# 1. The Lua boundary: only the C shim may see Lua's API (and Tests/CPattern, a standalone C
#    program with no Swift frames that compares the shim's matcher with Lua's own). Lua raises errors with longjmp, and a
#    longjmp across a Swift frame skips defer/releases/unlocks (docs/architecture.md).
offenders=$(grep -rnE '^\s*(@\w+\s+)*(public |internal |package )?import\s+CLua\b|\blua_[A-Za-z_]+|\bluaL_[A-Za-z_]+' \
  --include='*.swift' --include='*.c' --include='*.h' Sources Tests \
  | grep -vE '^(Sources/(CGatehouseLua|CLua)|Tests/CPattern)/' || true)
if [ -n "$offenders" ]; then
  echo "validate: Lua API used outside Sources/CGatehouseLua (use the gh_ shim):"
  echo "$offenders"
  status=1
fi

# 2. The shim's public header stays opaque: no Lua header leaks to Swift through it.
if grep -nE '#include\s*[<"](lua|lauxlib|lualib)\.h' Sources/CGatehouseLua/include/*.h; then
  echo "validate: Sources/CGatehouseLua/include must not include Lua headers"
  status=1
fi

# 3. Generated or machine-specific files never committed.
if git ls-files --error-unmatch Package.resolved >/dev/null 2>&1 || [ -n "$(git ls-files '.build*' | head -1)" ]; then
  echo "validate: Package.resolved or .build*/ is tracked; remove it from git"
  status=1
fi

# 4. Every plugin file shipped in plugins/ and examples/ compiles as Lua text (luac -p when
#    available; the gateway's own `check` covers them in CI too).
if command -v luac5.4 >/dev/null 2>&1; then
  while IFS= read -r f; do
    luac5.4 -p "$f" || { echo "validate: $f does not compile"; status=1; }
  done < <(git ls-files '*.lua')
fi

[ $status -eq 0 ] && echo "validate: OK"
exit $status
