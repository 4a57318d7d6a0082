#!/usr/bin/env bash
# Gatehouse beside nginx+Lua and HAProxy+Lua, same policy, same machine, one run.
#
#   bench/run.sh                      # 2 rounds x 10 s per target, 64 connections
#   DURATION=20s ROUNDS=3 CONNECTIONS=128 bench/run.sh
#
# Installs wrk, nginx with the Lua module and haproxy from Debian when missing, builds a
# release gatehouse, starts a fast loopback upstream (nginx returning a fixed 200), then for
# each target runs wrk with the same connections, duration and key mix, alternating targets
# across rounds. Every target is checked for correct answers before it is timed. Besides
# requests/s and latency it reports each target's own CPU time per request (user + system of
# the target's processes during its run; the upstream's for "direct"). "swift-stack" is the
# bare stack Gatehouse is built on (Hummingbird + AsyncHTTPClient forwarding, nothing else),
# to tell the stack's own cost from the gateway's.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
. "$ROOT/scripts/lib/ensure-packages.sh"
ensure_packages wrk nginx-light libnginx-mod-http-lua haproxy liblua5.4-dev libhiredis-dev redis-server redis-tools pkg-config curl python3 openssl

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}
KEYS=${KEYS:-1000}
MEMORY_KEYS=${MEMORY_KEYS:-10000}
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== building gatehouse (release)"
(cd "$ROOT" && swift build -c release --product gatehouse 2>&1 | tail -1)
(cd "$ROOT" && swift build -c release --product gatehouse-stack-baseline 2>&1 | tail -1)
GATEHOUSE="$ROOT/.build/release/gatehouse"

python3 "$BENCH/gen-keys.py" "$KEYS" "$WORK"
mkdir -p "$WORK/mem" && python3 "$BENCH/gen-keys.py" "$MEMORY_KEYS" "$WORK/mem"

render() { sed -e "s|__WORK__|$WORK|g" -e "s|__BENCH__|$BENCH|g" -e "s|__WORKERS__|$WORKERS|g" "$1" > "$2"; }

# A private CA and a certificate for 127.0.0.1: the TLS upstream both gateways verify.
mkdir -p "$WORK/tls"
(cd "$WORK/tls" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca -keyout ca-key.pem -out ca.pem 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr 2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext &&
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null)

echo "== starting upstream, Redis, nginx+Lua, HAProxy+Lua, Gatehouse W0/W1/W2/W3/W4/W4-redis"
# The Redis of W4-redis (rate limits counted in Redis, one EVALSHA per request).
redis-server --port 9206 --bind 127.0.0.1 --save "" --appendonly no --loglevel warning > "$WORK/redis.log" 2>&1 & PIDS+=($!)
PID_redis=$!
render "$BENCH/nginx/upstream.conf" "$WORK/upstream.conf"
nginx -c "$WORK/upstream.conf" -p "$WORK" -e "$WORK/upstream-error.log" & PIDS+=($!)
PID_upstream=$!
render "$BENCH/nginx/gateway.conf" "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p /usr/share/nginx -e "$WORK/nginx-error.log" & PIDS+=($!)
PID_nginx=$!
render "$BENCH/haproxy/haproxy.cfg" "$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" -db > "$WORK/haproxy.log" 2>&1 & PIDS+=($!)
PID_haproxy=$!

start_gatehouse() { # name port consumers-dir
  local dir="$WORK/$1"
  mkdir -p "$dir/config"
  cp "$BENCH/gatehouse/$1/"*.json "$dir/config/"
  cp "$3/consumers.json" "$dir/config/"
  "$GATEHOUSE" serve --config "$dir/config" --plugins "$BENCH/gatehouse/plugins" --port "$2" --log-level error \
    > "$dir/log" 2>&1 & PIDS+=($!)
  eval "PID_$1=$!"
}
# The bare stack Gatehouse is built on (Hummingbird + AsyncHTTPClient, nothing else).
"$ROOT/.build/release/gatehouse-stack-baseline" 8094 http://127.0.0.1:9201 > "$WORK/stack.log" 2>&1 & PIDS+=($!)
PID_stack=$!
start_gatehouse w0 8090 "$WORK"
start_gatehouse w1 8091 "$WORK"
start_gatehouse w2 8092 "$WORK"
start_gatehouse w3 8096 "$WORK"
start_gatehouse w4 8097 "$WORK"
start_gatehouse w4r 8098 "$WORK"
# W0 with an https upstream (the CA given in gatehouse.json).
mkdir -p "$WORK/w0tls/config"
sed 's|http://127.0.0.1:9201|https://127.0.0.1:9203|' "$BENCH/gatehouse/w0/routes.oas.json" > "$WORK/w0tls/config/routes.oas.json"
cp "$BENCH/gatehouse/w0/policies.json" "$WORK/consumers.json" "$WORK/w0tls/config/"
echo "{ \"upstreamCaFile\": \"$WORK/tls/ca.pem\" }" > "$WORK/w0tls/config/gatehouse.json"
"$GATEHOUSE" serve --config "$WORK/w0tls/config" --plugins "$BENCH/gatehouse/plugins" --port 8095 --log-level error \
  > "$WORK/w0tls.log" 2>&1 & PIDS+=($!)
PID_w0tls=$!
# W1 again, with MEMORY_KEYS consumers, for the memory figures.
mkdir -p "$WORK/wmem/config" && cp "$BENCH/gatehouse/w1/"*.json "$WORK/wmem/config/" && cp "$WORK/mem/consumers.json" "$WORK/wmem/config/"
"$GATEHOUSE" serve --config "$WORK/wmem/config" --plugins "$BENCH/gatehouse/plugins" --port 8093 --log-level error \
  > "$WORK/wmem.log" 2>&1 & PIDS+=($!)
PID_wmem=$!
sleep 2

KEY=$(head -1 "$WORK/keys.txt")        # a sandbox key
LIVE=$(sed -n 2p "$WORK/keys.txt")     # a production key
check() { # url expected-status expected-body-fragment [curl args...]
  local url=$1 status=$2 fragment=$3; shift 3
  local out code
  out=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@" "$url" || true)
  code=$out
  if [ "$code" != "$status" ] || ! grep -q -- "$fragment" "$WORK/check.body"; then
    echo "verification failed: $url → $code $(head -c 300 "$WORK/check.body")" >&2
    exit 1
  fi
}
echo "== verifying every target answers correctly"
check http://127.0.0.1:9201/v1/items/1 200 sandbox
for port in 8081 8083 8091 8096 8097 8098; do
  check "http://127.0.0.1:$port/v1/items/1" 200 '"sandbox"' -H "Authorization: Bearer $KEY"
  check "http://127.0.0.1:$port/v1/items/1" 200 '"production"' -H "Authorization: Bearer $LIVE"
  check "http://127.0.0.1:$port/v1/items/1" 401 'Unauthorized'
done
check http://127.0.0.1:8082/v1/items/1 200 sandbox
check http://127.0.0.1:8090/v1/items/1 200 sandbox
check http://127.0.0.1:8094/v1/items/1 200 sandbox
check http://127.0.0.1:8084/v1/items/1 200 sandbox
check http://127.0.0.1:8095/v1/items/1 200 sandbox
check http://127.0.0.1:8092/v1/items/1 200 production -X POST -H "Authorization: Bearer $LIVE" -H 'content-type: application/json' -d '{"qty":1}'
check http://127.0.0.1:8093/v1/items/1 200 production -H "Authorization: Bearer $(sed -n 2p "$WORK/mem/keys.txt")"

rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
IDLE_RSS=$(rss_kb "$PID_w1")

# CPU time (user + system, in clock ticks) of a process and its children (nginx workers): the
# target's own cost per request, which on a shared machine says more than requests/s alone.
cpu_ticks() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
TICKS=$(getconf CLK_TCK)
TARGETS="direct:9201:GET:upstream nginx-proxy:8082:GET:nginx nginx-lua:8081:GET:nginx haproxy-lua:8083:GET:haproxy swift-stack:8094:GET:stack gatehouse-w0:8090:GET:w0 gatehouse-w1:8091:GET:w1 gatehouse-w2:8092:POST:w2 gatehouse-w3:8096:GET:w3 gatehouse-w4:8097:GET:w4 gatehouse-w4-redis:8098:GET:w4r nginx-proxy-tls:8084:GET:nginx gatehouse-w0-tls:8095:GET:w0tls"
: > "$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do
    IFS=: read -r name port method process <<< "$t"
    body=""
    [ "$method" = POST ] && body='{"sku":"A-1","qty":2}'
    pid_var="PID_$process"; pid=${!pid_var}
    before=$(cpu_ticks "$pid")
    redis_before=$(cpu_ticks "$PID_redis")
    calls_before=$(redis-cli -p 9206 info commandstats | sed -nE 's/^cmdstat_evalsha:calls=([0-9]+).*/\1/p')
    line=$(BENCH_KEYS="$WORK/keys.txt" BENCH_METHOD="$method" BENCH_BODY="$body" \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH/wrk/keys.lua" "http://127.0.0.1:$port" | grep '^BENCH')
    after=$(cpu_ticks "$pid")
    requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<< "$line")
    cpu_us=$(( (after - before) * 1000000 / TICKS / (requests > 0 ? requests : 1) ))
    extra=""
    if [ "$process" = w4r ]; then
      # Redis' own CPU per request, and its round trips per request (EVALSHA calls / requests).
      redis_after=$(cpu_ticks "$PID_redis")
      calls_after=$(redis-cli -p 9206 info commandstats | sed -nE 's/^cmdstat_evalsha:calls=([0-9]+).*/\1/p')
      extra=" redis_cpu_us=$(( (redis_after - redis_before) * 1000000 / TICKS / (requests > 0 ? requests : 1) )) redis_trips=$(python3 -c "print(round((${calls_after:-0} - ${calls_before:-0}) / max(1, $requests), 3))")"
    fi
    echo "$name round=$round $line cpu_us=$cpu_us$extra" | tee -a "$WORK/results.txt"
  done
done

echo "== memory: W1 with $MEMORY_KEYS consumers under load"
MEM_IDLE=$(rss_kb "$PID_wmem")
BENCH_KEYS="$WORK/mem/keys.txt" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH/wrk/keys.lua" http://127.0.0.1:8093 > /dev/null &
WRK=$!
PEAK=0
while kill -0 $WRK 2>/dev/null; do r=$(rss_kb "$PID_wmem"); [ "$r" -gt "$PEAK" ] && PEAK=$r; sleep 0.5; done
VM_KB=$(curl -s http://127.0.0.1:8093/__vm | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["kilobytes"]))')

python3 - "$WORK/results.txt" <<PY
import re, sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    m = dict(re.findall(r"(\w+)=([\d.]+)", line))
    rows.setdefault(name, []).append(m)
def med(name, key): return statistics.median(float(r[key]) for r in rows[name])
print()
print("| target | requests/s | p50 (ms) | p99 (ms) | CPU µs / request | non-2xx | errors |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in rows:
    print(f"| {name} | {med(name,'rps'):,.0f} | {med(name,'p50_us')/1000:.2f} | {med(name,'p99_us')/1000:.2f} | {med(name,'cpu_us'):.0f} | {sum(int(r['non2xx']) for r in rows[name])} | {sum(int(r['errors']) for r in rows[name])} |")
print()
def ratio(a, b, key): return med(a, key) / med(b, key)
print("| ratio | throughput | p99 latency | CPU per request |")
print("|---|---:|---:|---:|")
for a, b in [("gatehouse-w1","nginx-lua"), ("gatehouse-w1","haproxy-lua"), ("gatehouse-w0","nginx-proxy"), ("gatehouse-w0","swift-stack"), ("gatehouse-w2","gatehouse-w1"), ("gatehouse-w3","gatehouse-w1"), ("gatehouse-w4","gatehouse-w1"), ("gatehouse-w4-redis","gatehouse-w1"), ("gatehouse-w0-tls","nginx-proxy-tls"), ("gatehouse-w0-tls","gatehouse-w0")]:
    print(f"| {a} / {b} | {ratio(a,b,'rps'):.2f} | {ratio(a,b,'p99_us'):.2f} | {ratio(a,b,'cpu_us'):.2f} |")
if "gatehouse-w4-redis" in rows:
    print()
    print(f"W4-redis: Redis round trips per request {med('gatehouse-w4-redis','redis_trips'):.3f}; Redis' own CPU per request {med('gatehouse-w4-redis','redis_cpu_us'):.0f} µs (not in the gateway's figure)")
print()
print(f"Gatehouse memory: idle RSS (W1, $KEYS consumers) $((IDLE_RSS/1024)) MB; W1 with $MEMORY_KEYS consumers: idle $((MEM_IDLE/1024)) MB, peak under load $((PEAK/1024)) MB; Lua VM heap {int('$VM_KB')} KB per VM")
PY
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); wrk -t$THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS rounds; $(date -u +%Y-%m-%d)"
