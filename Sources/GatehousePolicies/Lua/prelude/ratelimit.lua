-- gatehouse/ratelimit.lua: `ratelimit.check(key, { rpm, burst })`, the rate-limit store of
-- `rate-limit-inbound` for scripts (per-route costs, several limits at once); `store = "redis"`
-- counts in the Redis of gatehouse.json (shared by gateway processes; the coroutine yields, and
-- nil, err comes back when Redis cannot answer).
local host, internal = ...
local type, error, math_type = type, error, math.type

local ratelimit = {}
function ratelimit.check(key, limit)
  if type(key) ~= "string" then error("ratelimit.check expects a key string", 2) end
  if type(limit) ~= "table" then error("ratelimit.check expects { rpm = n, burst = n }", 2) end
  local rpm, burst = limit.rpm, limit.burst
  if math_type(rpm) ~= "integer" then error("ratelimit.check: rpm must be a whole number", 2) end
  if burst ~= nil and math_type(burst) ~= "integer" then error("ratelimit.check: burst must be a whole number", 2) end
  local store = limit.store
  if store == "redis" then return host.ratelimit_check_redis(key, rpm, burst or 1) end
  if store ~= nil and store ~= "local" then error("ratelimit.check: store must be \"local\" or \"redis\"", 2) end
  return host.ratelimit_check(key, rpm, burst or 1)
end

internal.ratelimit = ratelimit
