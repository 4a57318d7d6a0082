-- gatehouse/upstreams.lua: `upstreams.get(name)` and `upstreams.names()`, the upstream groups of
-- upstreams.json with their targets' live state. Each call asks the host and returns a fresh
-- plain table (a snapshot: breakers move on while the policy runs).
local host, internal = ...
local type, error = type, error

local upstreams = {}
function upstreams.get(name)
  if type(name) ~= "string" then error("upstreams.get expects a group name", 2) end
  return host.upstreams_get(name)
end
function upstreams.names()
  return host.upstreams_names()
end

internal.upstreams = upstreams
