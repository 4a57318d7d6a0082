#!/usr/bin/env bash
# Hot reload under load: W1 for 30 s without reloads, then 30 s with a reload every second
# (POST /reload on the admin endpoint, each one building and publishing a new generation).
# Reports requests/s, p99, non-2xx and socket errors for both, and the throughput cost.
#   bench/reload.sh            DURATION=30s CONNECTIONS=64
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
. "$ROOT/scripts/lib/ensure-packages.sh"
ensure_packages wrk nginx-light liblua5.4-dev pkg-config curl python3
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-64}
WORK=$(mktemp -d /tmp/gatehouse-reload.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

(cd "$ROOT" && swift build -c release --product gatehouse 2>&1 | tail -1)
python3 "$BENCH/gen-keys.py" 1000 "$WORK"
sed -e "s|__WORK__|$WORK|g" "$BENCH/nginx/upstream.conf" > "$WORK/upstream.conf"
nginx -c "$WORK/upstream.conf" -p "$WORK" -e "$WORK/upstream-error.log" & PIDS+=($!)
mkdir -p "$WORK/config" && cp "$BENCH/gatehouse/w1/"*.json "$WORK/config/" && cp "$WORK/consumers.json" "$WORK/config/"
"$ROOT/.build/release/gatehouse" serve --config "$WORK/config" --plugins "$BENCH/gatehouse/plugins" --port 8091 \
  --admin-port 8099 --no-watch --log-level error > "$WORK/gatehouse.log" 2>&1 & PIDS+=($!)
sleep 2
curl -sf -H "Authorization: Bearer $(head -1 "$WORK/keys.txt")" http://127.0.0.1:8091/v1/items/1 | grep -q sandbox

load() { BENCH_KEYS="$WORK/keys.txt" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH/wrk/keys.lua" http://127.0.0.1:8091 | grep '^BENCH'; }
echo "== steady load, no reloads"
quiet=$(load); echo "$quiet"
echo "== steady load, one reload per second"
( end=$((SECONDS + ${DURATION%s})); n=0
  while [ $SECONDS -lt $end ]; do curl -sf -X POST http://127.0.0.1:8099/reload > /dev/null && n=$((n + 1)); sleep 1; done
  echo "$n" > "$WORK/reloads" ) &
busy=$(load); echo "$busy"
wait $!
generation=$(curl -s http://127.0.0.1:8099/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
python3 - "$quiet" "$busy" "$(cat "$WORK/reloads")" "$generation" <<'PY'
import re, sys
q = dict(re.findall(r"(\w+)=([\d.]+)", sys.argv[1])); b = dict(re.findall(r"(\w+)=([\d.]+)", sys.argv[2]))
print(f"\nreloads: {sys.argv[3]} (now generation {sys.argv[4]}); non-2xx during reloads: {b['non2xx']}, socket errors: {b['errors']}")
print(f"throughput {float(q['rps']):,.0f} → {float(b['rps']):,.0f} req/s ({(float(b['rps'])/float(q['rps'])-1)*100:+.1f}%), "
      f"p99 {int(q['p99_us'])/1000:.2f} → {int(b['p99_us'])/1000:.2f} ms")
PY
