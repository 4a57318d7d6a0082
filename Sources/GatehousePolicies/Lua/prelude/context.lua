-- gatehouse/context.lua: the `context` object (requestId, route, policyName, custom, log).
--
-- `context.custom` is the request's own table for passing values between its policies; it is
-- the only assignable field. `context.log.<level>(message, fields)` logs with the request id
-- and policy name; the message is turned into text here, in Lua (`tostring` may run a
-- __tostring metamethod, which a host function must never do). `context.log` is a read-only
-- view, so one policy cannot replace a log function under the next policy of the request.
local host, internal = ...
local setmetatable, type, error, tostring, ipairs, next = setmetatable, type, error, tostring, ipairs, next
local check, objects, live, rid_of, display, plain = internal.check, internal.objects, internal.live, internal.rid_of, internal.display, internal.plain

local function make_log(rid)
  local functions = {}
  for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    functions[level] = function(message, fields)
      if not live[rid] then error("context.log used after its request ended", 2) end
      host.log(rid, level, display(message), plain(fields))
    end
  end
  local function iterate(_, k) return next(functions, k) end
  return setmetatable({}, {
    __index = functions,
    __newindex = function() error("context.log is read-only", 2) end,
    __pairs = function(log) return iterate, log, nil end,
    __metatable = "log",
    __readonly = true,
  })
end

local ContextMT = { __metatable = "context", __readonly = true }
ContextMT.__index = function(c, k)
  local rid = check(c, "context", 2)
  local o = objects[rid]
  if k == "custom" then return o.custom end
  if k == "log" then
    local log = o.log
    if log == nil then log = make_log(rid); o.log = log end
    return log
  end
  if k == "route" then
    local route = o.route
    if route == nil then route = host.context_get(rid, "route"); o.route = route end
    return route
  end
  return host.context_get(rid, k)
end
ContextMT.__newindex = function(c, k, v)
  local rid = check(c, "context", 2)
  if k == "custom" and type(v) == "table" then objects[rid].custom = v
  else error("cannot set context." .. tostring(k) .. " (store your values in context.custom)", 2) end
end
ContextMT.__tostring = function(c) return "context " .. tostring(host.context_get(rid_of[c], "requestId")) end

internal.ContextMT = ContextMT
