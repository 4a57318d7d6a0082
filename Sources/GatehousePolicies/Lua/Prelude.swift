/// Trusted Lua that runs once per VM, before any plugin. It builds the policy-facing objects
/// (`request`, `context`, headers, responses) on top of host functions, and returns its internals
/// to Swift. Objects are empty tables whose metatables call the host; the request handle (rid)
/// lives in weak side tables that plugin code cannot reach, so a policy cannot forge a handle to
/// another request.
enum Prelude {
    static let chunkName = "gatehouse/prelude.lua"

    static let source = #"""
local host = ...
local rawget, setmetatable, type, error, tostring, next, select =
      rawget, setmetatable, type, error, tostring, next, select
local G = _G

local live = {}                                   -- rid -> true while its request runs
local objects = {}                                -- rid -> per-request Lua state
local rid_of = setmetatable({}, { __mode = "k" }) -- object -> rid
local kind_of = setmetatable({}, { __mode = "k" }) -- object -> "request" | "context" | "headers" | "response"
local index_of = setmetatable({}, { __mode = "k" }) -- headers/response object -> message index (0 = request)

local function check(obj, kind, level)
  local rid = rid_of[obj]
  if rid == nil or kind_of[obj] ~= kind then
    error("expected a " .. kind .. " object (did you write '.' instead of ':'?)", level + 1)
  end
  if not live[rid] then error(kind .. " used after its request ended", level + 1) end
  return rid
end

local function register(obj, rid, kind, index)
  rid_of[obj] = rid; kind_of[obj] = kind; index_of[obj] = index
  return obj
end

-- Headers ---------------------------------------------------------------------------------
local Headers = {}
local HeadersMT = {
  __index = Headers,
  __newindex = function() error("headers are read with :get(name) and changed with :set(name, value)", 2) end,
  __metatable = "headers",
}
HeadersMT.__pairs = function(h)
  local rid = check(h, "headers", 2)
  return next, host.headers_all(rid, index_of[h]), nil
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

-- Request ---------------------------------------------------------------------------------
local Request = {}
function Request.text(r) return host.body_text(check(r, "request", 2), 0) end
function Request.json(r)
  local text, err = host.body_text(check(r, "request", 2), 0)
  if text == nil then return nil, err end
  return host.json_decode(text)
end
function Request.setBody(r, body) host.body_set(check(r, "request", 2), 0, body) end
function Request.setQuery(r, name, value)
  local rid = check(r, "request", 2)
  host.request_set_query(rid, name, value)
  objects[rid].query = nil
end

local RequestMT = { __metatable = "request" }
RequestMT.__index = function(r, k)
  local rid = check(r, "request", 2)
  local m = Request[k]
  if m ~= nil then return m end
  local o = objects[rid]
  if k == "headers" then return o.headers end
  if k == "user" then
    local version = host.user_version(rid)
    if o.user_version ~= version then
      o.user = host.request_get(rid, "user"); o.user_version = version
    end
    return o.user
  end
  if k == "query" then
    local q = o.query
    if q == nil then q = host.request_get(rid, "query"); o.query = q end
    return q
  end
  if k == "params" then
    local p = o.params
    if p == nil then p = host.request_get(rid, "params"); o.params = p end
    return p
  end
  return host.request_get(rid, k)
end
RequestMT.__newindex = function(r, k, v)
  local rid = check(r, "request", 2)
  if k == "user" then
    local o = objects[rid]
    o.user_version = host.request_set(rid, "user", v)
    o.user = v
  elseif k == "method" or k == "path" then
    host.request_set(rid, k, v)
  else
    error("cannot set request." .. tostring(k) .. " (settable: method, path, user; use request.headers:set and request:setQuery)", 2)
  end
end
RequestMT.__tostring = function(r)
  local rid = rid_of[r]
  if not live[rid] then return "request (ended)" end
  return "request " .. host.request_get(rid, "method") .. " " .. host.request_get(rid, "path")
end

-- Responses -------------------------------------------------------------------------------
local Response = {}
function Response.text(res) return host.body_text(check(res, "response", 2), index_of[res]) end
function Response.json(res)
  local text, err = host.body_text(check(res, "response", 2), index_of[res])
  if text == nil then return nil, err end
  return host.json_decode(text)
end
function Response.setBody(res, body) host.body_set(check(res, "response", 2), index_of[res], body) end

local ResponseMT = { __metatable = "response" }
ResponseMT.__index = function(res, k)
  local rid = check(res, "response", 2)
  local m = Response[k]
  if m ~= nil then return m end
  local index = index_of[res]
  if k == "headers" then
    local o = objects[rid]
    local h = o.response_headers[index]
    if h == nil then h = headers_obj(rid, index); o.response_headers[index] = h end
    return h
  end
  if k == "status" then return host.response_status(rid, index) end
  return nil
end
ResponseMT.__newindex = function(res, k, v)
  local rid = check(res, "response", 2)
  if k == "status" then host.response_set_status(rid, index_of[res], v)
  else error("cannot set response." .. tostring(k) .. " (settable: status; use response.headers:set and response:setBody)", 2) end
end
ResponseMT.__tostring = function(res)
  local rid = rid_of[res]
  if not live[rid] then return "response (ended)" end
  return "response " .. tostring(host.response_status(rid, index_of[res]))
end

local function response_obj(rid, index)
  local o = objects[rid]
  local res = o.responses[index]
  if res == nil then
    res = register(setmetatable({}, ResponseMT), rid, "response", index)
    o.responses[index] = res
  end
  return res
end

-- Context ---------------------------------------------------------------------------------
local function make_log(rid)
  local log = {}
  for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    log[level] = function(message, fields)
      if not live[rid] then error("context.log used after its request ended", 2) end
      host.log(rid, level, message, fields)
    end
  end
  return setmetatable(log, { __newindex = function() error("context.log is read-only", 2) end, __metatable = "log" })
end

local ContextMT = { __metatable = "context" }
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

-- Per-request state -----------------------------------------------------------------------
local function open(rid)
  local o = objects[rid]
  if o ~= nil then return o end
  o = {
    request = register(setmetatable({}, RequestMT), rid, "request", 0),
    context = register(setmetatable({}, ContextMT), rid, "context", 0),
    headers = headers_obj(rid, 0),
    custom = {},
    responses = {},
    response_headers = {},
  }
  objects[rid] = o
  live[rid] = true
  return o
end

local function result_code(rid, result, allow_request)
  local o = objects[rid]
  if allow_request and result == o.request then return 0 end
  if rid_of[result] == rid and kind_of[result] == "response" then return index_of[result] end
  local t = type(result)
  if t == "table" then
    local kind = kind_of[result]
    if kind ~= nil then t = kind end
  end
  return -1, t
end

local function run_inbound(fn, rid, options, name)
  local o = open(rid)
  return result_code(rid, fn(o.request, o.context, options, name), true)
end

local function run_outbound(fn, rid, index, options, name)
  local o = open(rid)
  return result_code(rid, fn(response_obj(rid, index), o.request, o.context, options, name), false)
end

local function run_handler(fn, rid, options)
  local o = open(rid)
  return result_code(rid, fn(o.request, o.context, options), false)
end

-- A background loader's load function: value, or nil + error.
local function run_loader(fn, rid, key)
  open(rid)
  local value, err = fn(key)
  if value == nil then return -2, tostring(err or "the load function returned nil") end
  return 0, value
end

-- Public API ------------------------------------------------------------------------------
local json = { null = host.json_null, encode = host.json_encode, decode = host.json_decode }

-- Constructors are `Response.*` (class-like, as `new Response()` elsewhere) so they never
-- clash with an outbound policy's `response` parameter, whose :json()/:text() read the body.
local Response_lib = {}
local function header_table(h)
  if h ~= nil and type(h) ~= "table" then error("headers must be a table of name = value", 3) end
  return h
end
function Response_lib.new(spec)
  spec = spec or {}
  if type(spec) ~= "table" then error("Response.new expects a table {status=, headers=, body=}", 2) end
  local body = spec.body
  local rid, index
  if type(body) == "table" then
    rid, index = host.response_new(spec.status or 200, header_table(spec.headers), host.json_encode(body), "application/json")
  else
    rid, index = host.response_new(spec.status or 200, header_table(spec.headers), body, nil)
  end
  return response_obj(rid, index)
end
function Response_lib.json(value, status, headers)
  local rid, index = host.response_new(status or 200, header_table(headers), host.json_encode(value), "application/json")
  return response_obj(rid, index)
end
function Response_lib.text(text, status, headers)
  local rid, index = host.response_new(status or 200, header_table(headers), tostring(text), "text/plain; charset=utf-8")
  return response_obj(rid, index)
end
function Response_lib.redirect(location, status)
  local rid, index = host.response_new(status or 302, { location = location }, nil, nil)
  return response_obj(rid, index)
end

local problems = {}
local function problem(status)
  return function(request, context, fields)
    if fields == nil and type(request) == "table" and kind_of[request] == nil then fields = request end
    fields = fields or {}
    if type(fields) ~= "table" then error("problem fields must be a table {detail=, title=, type=}", 2) end
    local rid, index = host.problem_new(status, fields.detail, fields.title, fields.type)
    return response_obj(rid, index)
  end
end
local statuses = {
  badRequest = 400, unauthorized = 401, paymentRequired = 402, forbidden = 403, notFound = 404,
  methodNotAllowed = 405, notAcceptable = 406, conflict = 409, gone = 410, payloadTooLarge = 413,
  unsupportedMediaType = 415, unprocessableContent = 422, tooManyRequests = 429,
  internalServerError = 500, notImplemented = 501, badGateway = 502, serviceUnavailable = 503,
  gatewayTimeout = 504,
}
for name, status in pairs(statuses) do problems[name] = problem(status) end
function problems.status(status, request, context, fields) return problem(status)(request, context, fields) end

local env = setmetatable({}, {
  __index = function(_, name) return host.env_get(name) end,
  __newindex = function() error("env is read-only", 2) end,
  __metatable = "env",
})

-- http: non-blocking calls (the coroutine waits; the event loop does not).
local http = {}
local function fetch_options(opts, level)
  if opts ~= nil and type(opts) ~= "table" then error("fetch options must be a table {method=, headers=, body=, timeout=}", level + 1) end
  return opts
end
function http.fetch(url, opts)
  if type(url) ~= "string" then error("http.fetch expects a URL string", 2) end
  local rid, index = host.http_fetch(url, fetch_options(opts, 2))
  if rid == nil then return nil, index end
  return response_obj(rid, index)
end
function http.all(calls, opts)
  if type(calls) ~= "table" then error("http.all expects a list of {url, options}", 2) end
  local raw = host.http_all(calls, fetch_options(opts, 2))
  local results = {}
  for i = 1, #calls do
    local r = raw[i]
    if r.rid ~= nil then results[i] = { response = response_obj(r.rid, r.index) }
    else results[i] = { error = r.error } end
  end
  return results
end

-- cache: named zones shared by every VM of the process.
local Zone = {}
Zone.__index = Zone
Zone.__metatable = "zone"
function Zone:get(key) return host.cache_get(self.name, key) end
function Zone:put(key, value, ttl) host.cache_put(self.name, key, value, ttl) end
function Zone:delete(key) host.cache_delete(self.name, key) end
local cache = {}
function cache.zone(name, opts)
  if type(name) ~= "string" then error("cache.zone expects a zone name", 2) end
  host.cache_zone(name, opts)
  return setmetatable({ name = name }, Zone)
end

-- loader: cached values refreshed in the background, one load per key per process.
local Loader = {}
Loader.__index = Loader
Loader.__metatable = "loader"
function Loader:get(key)
  if type(key) ~= "string" then error("loader:get expects a string key", 2) end
  return host.loader_get(self.name, key)
end
local loader = {}
function loader.new(name, fn, opts)
  if type(name) ~= "string" or type(fn) ~= "function" then error("loader.new expects (name, function(key) ... end, {ttl=, timeout=})", 2) end
  host.loader_register(name, fn, opts)
  return setmetatable({ name = name }, Loader)
end

-- Read-only views: shared tables (libraries, the API, module tables) cannot be changed by one
-- policy under another's feet. `rawset` refuses tables whose metatable has __readonly.
local function readonly(t, what)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k)
      error("cannot set " .. what .. "." .. tostring(k) .. ": it is shared by every policy and read-only", 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
    __readonly = true,
  })
end

local gatehouse = readonly({
  Response = readonly(Response_lib, "Response"), problems = readonly(problems, "problems"), json = readonly(json, "json"),
  env = env, http = readonly(http, "http"), cache = readonly(cache, "cache"), loader = readonly(loader, "loader"),
}, "gatehouse")

G.Response = gatehouse.Response
G.http = gatehouse.http
G.cache = gatehouse.cache
G.loader = gatehouse.loader
G.problems = gatehouse.problems
G.json = gatehouse.json
G.env = env
for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine", "os" }) do
  G[name] = readonly(G[name], name)
end
G.print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  host.print(table.concat(parts, "\t"))
end

-- Assertions for policy tests (`gatehouse test`): each raises an error pointing at the caller.
local testlib = {}
local function describe(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, text = pcall(host.json_encode, v)
    if ok then return text end
  end
  return tostring(v)
end
local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
function testlib.equal(actual, expected, message)
  if not deep_equal(actual, expected) then
    error((message and message .. ": " or "") .. "expected " .. describe(expected) .. ", got " .. describe(actual), 2)
  end
end
function testlib.truthy(value, message)
  if not value then error((message and message .. ": " or "") .. "expected a true value, got " .. describe(value), 2) end
end
function testlib.falsy(value, message)
  if value then error((message and message .. ": " or "") .. "expected false or nil, got " .. describe(value), 2) end
end
function testlib.contains(text, fragment, message)
  if type(text) ~= "string" or not text:find(fragment, 1, true) then
    error((message and message .. ": " or "") .. "expected " .. describe(text) .. " to contain " .. describe(fragment), 2)
  end
end

-- require: the gatehouse API, or a module from the plugin directories, loaded once per VM.
-- Each module gets its own globals; once its body has run they are sealed, so nothing a policy
-- sets while handling a request can leak into later requests. Requirers get a read-only view
-- of a module's table; Swift loads policies from the real one (require_raw).
local loaded = { gatehouse = gatehouse, ["gatehouse.test"] = readonly(testlib, "gatehouse.test") }
local views = {}
local loading = {}
local function seal(environment, chunkname)
  setmetatable(environment, {
    __index = G,
    __newindex = function(_, k)
      error("cannot set global '" .. tostring(k) .. "' after " .. chunkname .. " has loaded: use a local, or context.custom for per-request data", 2)
    end,
    __metatable = false,
    __readonly = true,
  })
end
local function require_raw(name)
  if type(name) ~= "string" then error("require expects a module name", 2) end
  local m = loaded[name]
  if m ~= nil then return m end
  if loading[name] then error("require loop: module '" .. name .. "' requires itself", 2) end
  local source, chunkname = host.module_source(name)
  if source == nil then error(chunkname, 2) end
  local environment = setmetatable({}, { __index = G })
  local fn, err = load(source, "@" .. chunkname, "t", environment)
  if fn == nil then error(err, 0) end
  loading[name] = true
  local ok, result = pcall(fn, name)
  loading[name] = nil
  if not ok then error(result, 0) end
  seal(environment, chunkname)
  if result == nil then result = true end
  loaded[name] = result
  return result
end
G.require = function(name)
  local m = require_raw(name)
  if type(m) ~= "table" or m == gatehouse then return m end
  local view = views[name]
  if view == nil then view = readonly(m, "module '" .. name .. "'"); views[name] = view end
  return view
end

-- Globals are shared by every policy on this VM: make accidental writes an error.
setmetatable(G, {
  __newindex = function(_, k)
    error("cannot set global '" .. tostring(k) .. "': globals are shared by every policy (use local)", 2)
  end,
  __metatable = false,
  __readonly = true,
})

return {
  objects = objects,
  live = live,
  run_inbound = run_inbound,
  run_outbound = run_outbound,
  run_handler = run_handler,
  run_loader = run_loader,
  require_raw = require_raw,
}
"""#
}
