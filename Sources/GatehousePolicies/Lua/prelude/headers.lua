-- gatehouse/headers.lua: header objects (`request.headers`, `response.headers`) and
-- `header_fields`, which every API that takes a table of headers uses.
--
-- A header object is an empty table registered in core.lua's side tables with its message
-- index (0 = the request, k = response k); every method asks the host. `header_fields` copies a
-- caller's `name = value` table into a fresh plain table of strings before it reaches the host,
-- so the host never sees a metatable and never has to run Lua code (`tostring`) itself.
local host, internal = ...
local setmetatable, type, error, tostring, pairs, next = setmetatable, type, error, tostring, pairs, next
local check, register, index_of = internal.check, internal.register, internal.index_of

local Headers = {}
local HeadersMT = {
  __index = Headers,
  __newindex = function() error("headers are read with :get(name) and changed with :set(name, value)", 2) end,
  __metatable = "headers",
  __readonly = true, -- rawset refuses it: a raw field would shadow the methods for every policy
}
HeadersMT.__pairs = function(h)
  local rid = check(h, "headers", 2)
  local all = host.headers_all(rid, index_of[h])
  return function(_, k) return next(all, k) end, h, nil
end
HeadersMT.__tostring = function() return "headers" end
function Headers.get(h, name) return host.headers_get(check(h, "headers", 2), index_of[h], name) end
function Headers.getAll(h, name) return host.headers_get_all(check(h, "headers", 2), index_of[h], name) end
function Headers.has(h, name) return host.headers_get(check(h, "headers", 2), index_of[h], name) ~= nil end
function Headers.set(h, name, value) host.headers_set(check(h, "headers", 2), index_of[h], name, value) end
function Headers.add(h, name, value) host.headers_add(check(h, "headers", 2), index_of[h], name, value) end
function Headers.remove(h, name) host.headers_remove(check(h, "headers", 2), index_of[h], name) end
function Headers.all(h) return host.headers_all(check(h, "headers", 2), index_of[h]) end

local function headers_obj(rid, index)
  return register(setmetatable({}, HeadersMT), rid, "headers", index)
end

-- A fresh table `name -> string` from `h` (nil stays nil), read with `pairs` (so read-only views
-- and header objects work). Numbers and booleans become text; any other value, or a name that
-- is not a string, is an error raised at the caller's `level`. `what` prefixes the messages.
local function header_fields(h, level, what)
  if h == nil then return nil end
  what = what or ""
  if type(h) ~= "table" then error(what .. "headers must be a table of name = value", level + 1) end
  local fields = {}
  for name, value in pairs(h) do
    if type(name) ~= "string" then
      error(what .. "header names must be strings, not a " .. type(name), level + 1)
    end
    local t = type(value)
    if t == "number" or t == "boolean" then
      value = tostring(value)
    elseif t ~= "string" then
      error(what .. "header '" .. name .. "' must be a string or number, not a " .. t, level + 1)
    end
    fields[name] = value
  end
  return fields
end

internal.headers_obj = headers_obj
internal.header_fields = header_fields
