-- gatehouse/ratelimit.lua: `ratelimit.check(key, { rpm, burst })`, the rate-limit store of
-- `rate-limit-inbound` for scripts (per-route costs, several limits at once).
local host, internal = ...
local type, error, math_type = type, error, math.type

local ratelimit = {}
function ratelimit.check(key, limit)
  if type(key) ~= "string" then error("ratelimit.check expects a key string", 2) end
  if type(limit) ~= "table" then error("ratelimit.check expects { rpm = n, burst = n }", 2) end
  local rpm, burst = limit.rpm, limit.burst
  if math_type(rpm) ~= "integer" then error("ratelimit.check: rpm must be a whole number", 2) end
  if burst ~= nil and math_type(burst) ~= "integer" then error("ratelimit.check: burst must be a whole number", 2) end
  return host.ratelimit_check(key, rpm, burst or 1)
end

internal.ratelimit = ratelimit
