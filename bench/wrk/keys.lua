-- wrk script: every request carries a random key from keys.txt (W1/W2), optionally a small
-- JSON body (W2: POST). Counts non-2xx answers per thread and reports them at the end.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local counter = 0
local threads = {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000)
  non2xx = 0
end

function request()
  counter = counter + 1
  local key = keys[math.random(#keys)]
  local headers = { ["Authorization"] = "Bearer " .. key }
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, "/v1/items/" .. (counter % 100), headers, body)
end

function response(status)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  io.write(string.format("BENCH rps=%.1f p50_us=%d p99_us=%d non2xx=%d requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), bad, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status))
end
