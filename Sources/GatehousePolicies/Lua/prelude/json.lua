-- gatehouse/json.lua: the `json` namespace.
--
-- `decode` is the host function itself. `encode` goes through core.lua's `encode`, which turns
-- read-only views (such as tables reached through a required module) back into tables the host
-- can read and raises its errors at the policy's line.
local host, internal = ...
local encode = internal.encode

local json = { null = host.json_null, decode = host.json_decode }
function json.encode(value)
  local text = encode(value, 2)
  return text
end

internal.json = json
