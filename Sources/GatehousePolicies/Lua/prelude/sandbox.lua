-- gatehouse/sandbox.lua: what plugin code sees. Runs last.
--
-- Builds the read-only views of everything policies share (the standard libraries, the
-- Gatehouse API, the tables `require` returns), the globals, `require` with one sealed
-- environment per module, and finally seals the shared globals table G itself. The rules:
--   * a view never hands out the table behind it: `__pairs` iterates with a private `next`,
--     `__metatable` hides the metatable, `__readonly` makes the C `rawset` refuse it;
--   * module views are deep: a table reached through one is itself a view (cached, so
--     `view.x == view.x`);
--   * G is never reachable from plugin code: each module environment has its own `_G` (the
--     environment itself) and its own `load` (defaulting to that environment), and writes to an
--     environment never reach G.
local host, internal = ...
local G = _ENV
local setmetatable, rawset, rawget, type, error, tostring, next, select, pcall, ipairs =
      setmetatable, rawset, rawget, type, error, tostring, next, select, pcall, ipairs
local c_load = load -- the C wrapper: text chunks only, no environment unless one is given
local concat = table.concat
local view_target, kind_of = internal.view_target, internal.kind_of

local function refuse(what)
  return function(_, k)
    error("cannot set " .. what .. "." .. tostring(k) .. ": it is shared by every policy and read-only", 2)
  end
end

-- Makes `view` a read-only view of `t`: reads through `index`, iteration through `iterate`
-- (never `next, t`: the real table must not leave), writes refused, metatable hidden.
local function make_view(view, t, what, index, iterate)
  setmetatable(view, {
    __index = index,
    __newindex = refuse(what),
    __pairs = function(v) return iterate, v, nil end,
    __len = function() return #t end,
    __metatable = false,
    __readonly = true,
  })
  view_target[view] = t
  return view
end

-- A shallow view, for tables whose values are functions, numbers, strings or views already
-- (the standard libraries and the API): a table __index, the fast path.
local function readonly(t, what)
  return make_view({}, t, what, t, function(_, k) return next(t, k) end)
end

-- Deep views, for module tables: every table value (and table key) read through one is a view
-- too. One view per table (weak, so views of tables nobody holds go away).
local view_of = setmetatable({}, { __mode = "k" }) -- table -> its deep view
local deep_view
local function child(x, what)
  if type(x) ~= "table" or view_target[x] ~= nil or kind_of[x] ~= nil then return x end
  return view_of[x] or deep_view(x, what)
end
local function name_of(what, k)
  if type(k) == "string" then return what .. "." .. k end
  return what .. "[" .. tostring(k) .. "]"
end
function deep_view(t, what)
  local view = {}
  -- A key handed out as a view stands for the table behind it.
  local function key(k)
    if type(k) == "table" and rawget(t, k) == nil then return view_target[k] or k end
    return k
  end
  local function iterate(_, k)
    local nk, nv = next(t, key(k))
    if nk == nil then return nil end
    return child(nk, what), child(nv, name_of(what, nk))
  end
  make_view(view, t, what, function(_, k)
    local v = t[k]
    if v == nil and type(k) == "table" then
      local real = view_target[k]
      if real ~= nil then k = real; v = t[real] end
    end
    if type(v) ~= "table" then return v end
    return child(v, name_of(what, k))
  end, iterate)
  view_of[t] = view
  return view
end

-- The API -----------------------------------------------------------------------------------
local env = internal.env
local gatehouse = readonly({
  Response = readonly(internal.Response_lib, "Response"),
  problems = readonly(internal.problems, "problems"),
  json = readonly(internal.json, "json"),
  env = env,
  http = readonly(internal.http, "http"),
  cache = readonly(internal.cache, "cache"),
  loader = readonly(internal.loader, "loader"),
  upstreams = readonly(internal.upstreams, "upstreams"),
  ratelimit = readonly(internal.ratelimit, "ratelimit"),
}, "gatehouse")

-- Globals -----------------------------------------------------------------------------------
G.Response = gatehouse.Response
G.http = gatehouse.http
G.cache = gatehouse.cache
G.loader = gatehouse.loader
G.upstreams = gatehouse.upstreams
G.ratelimit = gatehouse.ratelimit
G.problems = gatehouse.problems
G.json = gatehouse.json
G.env = env
for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine", "os" }) do
  G[name] = readonly(G[name], name)
end
G.print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  host.print(concat(parts, "\t"))
end

-- require -----------------------------------------------------------------------------------
-- The gatehouse API, or a module from the plugin directories, loaded once per VM. Each module
-- gets its own environment: reads fall back to G, writes stay in the environment (its `_G` is
-- the environment itself). Once the module's body has run the environment is sealed: every
-- global assignment is an error, so nothing a policy does while handling a request can leak
-- into later requests. Requirers get a deep read-only view of a module's table; Swift loads
-- policies from the real one (require_raw).
local loaded = { gatehouse = gatehouse, ["gatehouse.test"] = readonly(internal.testlib, "gatehouse.test") }
local loading = {}

-- A fresh environment and its metatable (hidden from the start: through it G would be reachable).
local function new_environment()
  local environment = {}
  local mt = { __index = G, __metatable = false }
  environment._G = environment
  -- load(chunk, chunkname, mode, env): text only, in this module's environment unless `env` is given.
  environment.load = function(...)
    local chunk, chunkname, _, e = ...
    if select("#", ...) < 4 then e = environment end
    return c_load(chunk, chunkname, "t", e)
  end
  setmetatable(environment, mt)
  return environment, mt
end

-- After the body has run: the module's globals move into a hidden table behind the (now empty)
-- environment, so assigning one of them is refused as well as assigning a new one.
local function seal(environment, mt, chunkname)
  local globals = {}
  for k, v in next, environment do globals[k] = v end
  for k in next, globals do rawset(environment, k, nil) end
  setmetatable(globals, { __index = G })
  local function iterate(_, k) return next(globals, k) end
  mt.__index = globals
  mt.__newindex = function(_, k)
    error("cannot set global '" .. tostring(k) .. "' after " .. chunkname .. " has loaded: use a local, or context.custom for per-request data", 2)
  end
  mt.__pairs = function(e) return iterate, e, nil end
  mt.__readonly = true
end

local function require_raw(name)
  if type(name) ~= "string" then error("require expects a module name", 2) end
  local m = loaded[name]
  if m ~= nil then return m end
  if loading[name] then error("require loop: module '" .. name .. "' requires itself", 2) end
  local source, chunkname = host.module_source(name)
  if source == nil then error(chunkname, 2) end
  local environment, mt = new_environment()
  local fn, err = c_load(source, "@" .. chunkname, "t", environment)
  if fn == nil then error(err, 0) end
  loading[name] = true
  local ok, result = pcall(fn, name)
  loading[name] = nil
  if not ok then error(result, 0) end
  seal(environment, mt, chunkname)
  if result == nil then result = true end
  loaded[name] = result
  return result
end

G.require = function(name)
  local m = require_raw(name)
  if type(m) ~= "table" then return m end
  return child(m, "module '" .. name .. "'")
end

-- The shared globals: no `_G` (each environment has its own), and sealed.
G._G = nil
setmetatable(G, {
  __newindex = function(_, k)
    error("cannot set global '" .. tostring(k) .. "': globals are shared by every policy (use local)", 2)
  end,
  __metatable = false,
  __readonly = true,
})

internal.require_raw = require_raw
