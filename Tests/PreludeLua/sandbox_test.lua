-- Runs the prelude's chunks (Sources/GatehousePolicies/Lua/prelude, in ORDER) under plain
-- lua5.4 with a mock `host`, and checks the sandbox from a policy's point of view.
--
--   lua5.4 Tests/PreludeLua/sandbox_test.lua [prelude directory]
--
-- The real VM wraps some standard functions in C (gh_sandbox.c); the ones the prelude or these
-- checks rely on are emulated below: load (text only; no environment unless one is given),
-- rawset (refuses tables whose metatable has __readonly), setmetatable (refuses __gc), and the
-- hidden string metatable. The chunks run in a fresh globals table, never this script's own.
local dir = arg[1] or "Sources/GatehousePolicies/Lua/prelude"

local real = {
  load = load, rawset = rawset, rawget = rawget, setmetatable = setmetatable, pairs = pairs,
  string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine, os = os,
  getmetatable = debug.getmetatable, getinfo = debug.getinfo, next = next, type = type,
}
local format, concat, sort = string.format, table.concat, table.sort

-- Results ----------------------------------------------------------------------------------
local passed, failed = 0, 0
local function test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. name .. "\n     " .. tostring(err):gsub("\n", "\n     "))
  end
end
local function check(cond, message, ...)
  if not cond then error(format(message or "check failed", ...), 2) end
end
local function eq(actual, expected, what)
  if actual ~= expected then
    error(format("%s: expected %s, got %s", what or "value", tostring(expected), tostring(actual)), 2)
  end
end
-- `fn` must raise an error containing `fragment` (plain text), optionally starting at `where`.
local function raises(fn, fragment, where)
  local ok, err = pcall(fn)
  if ok then error("expected an error containing '" .. fragment .. "', got none", 2) end
  err = tostring(err)
  if not err:find(fragment, 1, true) then error("expected an error containing '" .. fragment .. "', got: " .. err, 2) end
  if where and err:sub(1, #where) ~= where then error("expected the error to start with '" .. where .. "', got: " .. err, 2) end
  return err
end

-- The sandboxed globals, as gh_open_sandbox leaves them ------------------------------------
local G = {}
for _, name in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
  "rawequal", "rawget", "rawlen", "select", "tonumber", "tostring", "type", "xpcall", "warn" }) do
  G[name] = _G[name]
end
G._VERSION = _VERSION
G.string, G.table, G.math, G.utf8, G.coroutine = string, table, math, utf8, coroutine
G.os = { time = os.time, clock = os.clock, date = os.date }
local real_os = G.os
G._G = G
G.load = function(chunk, chunkname, mode, env) -- lua_settop(L, 4): env is nil unless given
  return real.load(chunk, chunkname, "t", env)
end
G.collectgarbage = function(opt)
  if (opt or "collect") ~= "count" then error("collectgarbage('" .. tostring(opt) .. "') is not available to policies; only 'count' is", 2) end
  return collectgarbage("count")
end
G.setmetatable = function(t, mt)
  if real.type(mt) == "table" and real.rawget(mt, "__gc") ~= nil then error("setmetatable: __gc metamethods are not allowed", 2) end
  return real.setmetatable(t, mt)
end
G.rawset = function(t, k, v)
  if real.type(t) ~= "table" then error("bad argument #1 to 'rawset' (table expected, got " .. real.type(t) .. ")", 2) end
  local mt = real.getmetatable(t)
  if mt ~= nil and real.rawget(mt, "__readonly") ~= nil then error("rawset: this table is read-only (it is shared by every policy)", 2) end
  return real.rawset(t, k, v)
end
string.dump = nil
real.getmetatable("").__metatable = false

-- The mock host ----------------------------------------------------------------------------
local violations = {} -- host functions that received something other than plain data
local function violation(text) violations[#violations + 1] = text end
local internal = {}
local function is_view(t) return internal.view_target ~= nil and internal.view_target[t] ~= nil end

local function plain_table(t, what)
  if real.getmetatable(t) ~= nil then violation(what .. " has a metatable") end
  if is_view(t) then violation(what .. " is a read-only view") end
end
local function plain_headers(h, what)
  if h == nil then return end
  if real.type(h) ~= "table" then violation(what .. " is a " .. real.type(h)); return end
  plain_table(h, what)
  for k, v in real.next, h do
    if real.type(k) ~= "string" or real.type(v) ~= "string" then
      violation(what .. " has " .. real.type(k) .. " -> " .. real.type(v))
    end
  end
end

local json_null = coroutine.create(function() end) -- a unique non-table, as the light userdata is
local function json_raw(v, depth) -- reads tables raw, as LuaState.readJSON does
  if depth > 64 then error("nesting deeper than 64 levels (is there a cycle?)", 0) end
  local t = real.type(v)
  if v == nil or v == json_null then return "null" end
  if t == "boolean" or t == "number" then return tostring(v) end
  if t == "string" then return format("%q", v) end
  if t ~= "table" then error("cannot convert a " .. t .. " value to JSON", 0) end
  if is_view(v) then violation("json: the host was given a read-only view") end
  local keys, count = {}, 0
  for k in real.next, v do count = count + 1; keys[count] = k end
  if count == 0 then return "{}" end
  if count == rawlen(v) then
    local items = {}
    for i = 1, count do items[i] = json_raw(real.rawget(v, i), depth + 1) end
    return "[" .. concat(items, ",") .. "]"
  end
  for _, k in ipairs(keys) do if real.type(k) ~= "string" then error("table keys must be strings", 0) end end
  sort(keys)
  local items = {}
  for i, k in ipairs(keys) do items[i] = format("%q", k) .. ":" .. json_raw(real.rawget(v, k), depth + 1) end
  return "{" .. concat(items, ",") .. "}"
end

local requests = {} -- rid -> { method, path, headers, responses, user, user_version }
local current = nil -- the rid whose invocation runs (as PolicyRuntime.current)
local function new_request(rid)
  requests[rid] = { method = "GET", path = "/x", headers = { accept = "text/plain" }, responses = {}, user_version = 0 }
end
local function message(rid, index)
  local r = requests[rid]
  if index == 0 then return r end
  return r.responses[index]
end
local function add_response(rid, status, headers, body)
  local r = requests[rid]
  r.responses[#r.responses + 1] = { status = status, headers = headers or {}, body = body }
  return #r.responses
end

local logged, problems_made, fetched, fetched_all, printed, made = {}, {}, {}, {}, {}, {}
local modules = {}
local host = {
  json_null = json_null,
  json_encode = function(v)
    local ok, text = pcall(json_raw, v, 0)
    if not ok then error("json.encode: " .. text, 2) end -- the trampoline adds the Lua caller's position
    return text
  end,
  json_decode = function(s) if s == "{}" then return {} end return nil, "invalid JSON" end,
  request_get = function(rid, k)
    local r = requests[rid]
    if k == "method" or k == "path" then return r[k] end
    if k == "query" then return { q = "1" } end
    if k == "params" then return { id = "7" } end
    if k == "user" then return r.user end
    return nil
  end,
  request_set = function(rid, k, v)
    if k == "user" then
      if v ~= nil then plain_table(v, "request_set user") end
      requests[rid].user = v; requests[rid].user_version = requests[rid].user_version + 1
      return requests[rid].user_version
    end
    requests[rid][k] = v
  end,
  user_version = function(rid) return requests[rid].user_version end,
  request_set_query = function() end,
  body_text = function() return "" end,
  body_set = function() end,
  headers_get = function(rid, index, name) return message(rid, index).headers[name] end,
  headers_get_all = function(rid, index, name) return { message(rid, index).headers[name] } end,
  headers_set = function(rid, index, name, value) message(rid, index).headers[name] = value end,
  headers_add = function(rid, index, name, value) message(rid, index).headers[name] = value end,
  headers_remove = function(rid, index, name) message(rid, index).headers[name] = nil end,
  headers_all = function(rid, index)
    local copy = {}
    for k, v in real.next, message(rid, index).headers do copy[k] = v end
    return copy
  end,
  response_new = function(status, headers, body, content_type)
    plain_headers(headers, "response_new headers")
    if body ~= nil and real.type(body) ~= "string" then violation("response_new body is a " .. real.type(body)) end
    made[#made + 1] = { status = status, headers = headers, body = body }
    return current, add_response(current, status, headers, body)
  end,
  response_status = function(rid, index) return requests[rid].responses[index].status end,
  response_set_status = function(rid, index, status) requests[rid].responses[index].status = status end,
  problem_new = function(status, detail, title, type_)
    if detail ~= nil and real.type(detail) ~= "string" then violation("problem_new detail is a " .. real.type(detail)) end
    problems_made[#problems_made + 1] = { status = status, detail = detail }
    return current, add_response(current, status, {}, detail)
  end,
  context_get = function(rid, k)
    if k == "requestId" then return "req-" .. rid end
    if k == "route" then return { path = "/x", method = "GET" } end
    return nil
  end,
  log = function(rid, level, msg, fields)
    if real.type(msg) ~= "string" then violation("log message is a " .. real.type(msg)) end
    if fields ~= nil then json_raw(fields, 0) end
    logged[#logged + 1] = { level = level, message = msg, fields = fields }
  end,
  print = function(s) printed[#printed + 1] = s end,
  env_get = function(name) if name == "HOME_REGION" then return "eu" end return nil end,
  module_source = function(name)
    local source = modules[name]
    if source == nil then return nil, "module '" .. name .. "' not found in the plugin directories" end
    return source, "plugins/" .. name .. ".lua"
  end,
  http_fetch = function(url, opts)
    if opts ~= nil then
      plain_table(opts, "http_fetch options")
      plain_headers(opts.headers, "http_fetch headers")
      if opts.body ~= nil and real.type(opts.body) == "table" then json_raw(opts.body, 0) end
    end
    fetched[#fetched + 1] = { url = url, opts = opts }
    return current, add_response(current, 200, {}, "")
  end,
  http_all = function(calls, opts)
    plain_table(calls, "http_all calls")
    if opts ~= nil then plain_table(opts, "http_all options"); plain_headers(opts.headers, "http_all headers") end
    local out = {}
    for i = 1, rawlen(calls) do
      local call = real.rawget(calls, i)
      if real.type(call) == "table" then
        plain_table(call, "http_all call")
        local o = real.rawget(call, 2)
        if real.type(o) == "table" then plain_table(o, "http_all call options"); plain_headers(o.headers, "http_all call headers") end
      end
      out[i] = { rid = current, index = add_response(current, 200, {}, "") }
    end
    fetched_all[#fetched_all + 1] = { calls = calls, opts = opts }
    return out
  end,
  cache_zone = function(name, opts) if opts ~= nil then plain_table(opts, "cache_zone options") end end,
  cache_get = function() return nil end,
  cache_put = function(name, key, value) json_raw(value, 0) end,
  cache_delete = function() end,
  loader_register = function(name, fn, opts) if opts ~= nil then plain_table(opts, "loader_register options") end end,
  loader_get = function() return nil end,
  upstreams_get = function() return nil end,
  upstreams_names = function() return {} end,
  ratelimit_check = function() return true, 0, 0 end,
}

-- Load the prelude -------------------------------------------------------------------------
local order = {}
do
  local f = assert(io.open(dir .. "/ORDER"))
  for line in f:lines() do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line:sub(1, 1) ~= "#" then order[#order + 1] = line end
  end
  f:close()
end
for _, file in ipairs(order) do
  local f = assert(io.open(dir .. "/" .. file))
  local source = f:read("a")
  f:close()
  local chunk = assert(real.load(source, "@gatehouse/" .. file, "t", G))
  chunk(host, internal)
end

-- Plugin modules ---------------------------------------------------------------------------
modules.shared = [[
local key = { "a key" }
return {
  value = 42,
  nested = { x = 1, deeper = { y = 2 } },
  list = { "a", "b", "c" },
  headers = { ["x-shared"] = "yes", ["x-count"] = 3 },
  [key] = "table key",
  keytable = key,
  fn = function() return "f" end,
}
]]
modules.fnmod = "return function() return 'fn' end"
-- Changes its own globals at load time, including ones G has.
modules.attacker = [[
_G.tostring = function() return "PWNED" end
local chunk = load("loaded_global = 1; return _ENV")
local chunk_env = chunk()
defined = 1
local M = { chunk_env = chunk_env, env = _ENV, mt_at_load = getmetatable(_G) }
function M.tostring_here() return tostring(1) end
function M.read_loaded_global() return loaded_global end
function M.set_existing_G() _G.tostring = function() return "again" end end
function M.set_existing_G_bare() print = nil end
function M.set_own_global() defined = 2 end
function M.set_new_global() fresh = 1 end
function M.rawset_global() rawset(_G, "fresh", 1) end
function M.load_at_request() return load("late = 1")() end
function M.load_explicit(env) return load("value = 5; return value", "=x", "t", env)() end
function M.load_binary() return load("\27Lua\84\0") end
function M.mt_now() return getmetatable(_G) end
function M.globals() local out = {} for k, v in pairs(_G) do out[k] = v end return out end
return M
]]
modules.victim = [[
local M = {}
function M.probe()
  return tostring(1), ("x"):upper(), string.upper("y"), rawget(_G, "loaded_global"), loaded_global, defined, _G == _ENV
end
return M
]]
modules.probe = [[
local M = {}
-- Everything plugin code can name, from a module environment.
function M.roots(request, context)
  return {
    string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine, os = os,
    Response = Response, problems = problems, json = json, http = http, cache = cache, loader = loader,
    env = env, gatehouse = require("gatehouse"), test = require("gatehouse.test"),
    shared = require("shared"), G = _G, log = context and context.log, headers = request and request.headers,
    request = request, context = context,
    zone = cache.zone("z"), loader_obj = loader.new("l", function() end),
    response = request and Response.text("r"), null = json.null,
  }
end
return M
]]
modules.loop = "return require('loop')"
-- Bad calls, each not in tail position, so errors raised at the caller's level name this file.
modules.bad = [[
local M = {}
function M.table_header() local r = Response.json({}, 200, { x = {} }) return r end
function M.number_name() local r = Response.new({ headers = { [1] = "a" } }) return r end
function M.string_headers() local r = Response.text("x", 200, "a: b") return r end
function M.table_location() local r = Response.redirect({}) return r end
function M.function_body() local r = Response.json(function() end) return r end
function M.encode_function() local s = json.encode({ f = print }) return s end
function M.fetch_table_header() local r = http.fetch("http://a/x", { headers = { bad = {} } }) return r end
function M.all_function_header() local r = http.all({ { "http://a/x", { headers = { bad = print } } } }) return r end
function M.fetch_number_options() local r = http.fetch("http://a/x", 5) return r end
return M
]]

local require_raw = internal.require_raw
local RESULT = internal.RESULT
local rid_counter = 0
-- Runs `fn(request, context)` as an inbound policy of a fresh request; returns the driver's results.
local function run(fn)
  rid_counter = rid_counter + 1
  local rid = rid_counter
  new_request(rid)
  current = rid
  local results = table.pack(pcall(internal.run_inbound, fn, rid, {}, "test-policy"))
  current = nil
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end
-- Calls `fn(request, context)` inside a request and returns what it returned (fn must not error).
local function within(fn)
  local out
  run(function(request, context) out = table.pack(fn(request, context)) return request end)
  return table.unpack(out, 1, out.n)
end

-- Tests ------------------------------------------------------------------------------------
test("every chunk in ORDER is named gatehouse/<file>.lua and Swift's fields are there", function()
  eq(real.getinfo(internal.check, "S").source, "@gatehouse/core.lua", "check's chunk")
  eq(real.getinfo(internal.run_inbound, "S").source, "@gatehouse/drivers.lua", "run_inbound's chunk")
  eq(real.getinfo(internal.require_raw, "S").source, "@gatehouse/sandbox.lua", "require_raw's chunk")
  for _, field in ipairs({ "objects", "live" }) do eq(type(internal[field]), "table", field) end
  for _, field in ipairs({ "run_inbound", "run_outbound", "run_handler", "run_loader", "require_raw" }) do
    eq(type(internal[field]), "function", field)
  end
  eq(order[#order], "sandbox.lua", "the last chunk")
end)

test("result codes", function()
  eq(RESULT.CONTINUE, 0, "CONTINUE"); eq(RESULT.INVALID, -1, "INVALID"); eq(RESULT.LOAD_FAILED, -2, "LOAD_FAILED")
  eq(run(function(request) return request end), RESULT.CONTINUE, "returning the request")
  local code = run(function() return G.Response.text("hi") end)
  eq(code, 1, "returning the first response")
  local code2, kind = run(function() return "nope" end)
  eq(code2, RESULT.INVALID, "returning a string"); eq(kind, "string", "its type")
  local code3, kind3 = run(function(_, context) return context end)
  eq(code3, RESULT.INVALID, "returning the context"); eq(kind3, "context", "its kind")
  rid_counter = rid_counter + 1; new_request(rid_counter)
  local c4, m4 = internal.run_loader(function() return nil, "down" end, rid_counter, "k")
  eq(c4, RESULT.LOAD_FAILED, "failed load"); eq(m4, "down", "its message")
  local c5, v5 = internal.run_loader(function() return require_raw("shared").nested end, rid_counter, "k")
  eq(c5, RESULT.CONTINUE, "load"); eq(v5, require_raw("shared").nested, "its value")
  rid_counter = rid_counter + 1; new_request(rid_counter); current = rid_counter
  local index = add_response(rid_counter, 502, {}, "")
  eq(internal.run_outbound(function(response) return response end, rid_counter, index, {}, "o"), index, "outbound")
  eq(internal.run_handler(function() return nil end, rid_counter, {}), RESULT.INVALID, "handler returning nothing")
  current = nil
end)

-- Walks everything reachable through pairs (keys and values) and plain indexing of views.
local forbidden = {
  [G] = "G", [real.string] = "the real string table", [real.table] = "the real table library",
  [real.math] = "the real math table", [real.utf8] = "the real utf8 table", [real.coroutine] = "the real coroutine table",
  [real_os] = "the real os table", [internal] = "internal", [internal.Response_lib] = "Response_lib",
  [internal.problems] = "problems", [internal.json] = "json", [internal.http] = "http", [internal.cache] = "cache",
  [internal.loader] = "loader", [internal.upstreams] = "upstreams", [internal.ratelimit] = "ratelimit", [internal.testlib] = "testlib", [internal.objects] = "objects", [internal.live] = "live",
}
local function writable(x)
  if pcall(function() x.__probe = 1 end) then return "assignment" end
  if pcall(G.rawset, x, "__probe", 1) then return "rawset" end
  return nil
end
local function walk(x, path, seen, problems)
  if type(x) ~= "table" or seen[x] then return end
  seen[x] = true
  if forbidden[x] then problems[#problems + 1] = path .. " is " .. forbidden[x] end
  local mt = G.getmetatable(x)
  if type(mt) == "table" then problems[#problems + 1] = path .. " hands out its metatable" end
  local ok, f, s, i = pcall(G.pairs, x)
  if not ok then return end
  if type(s) == "table" and s ~= x and not seen[s] then
    local how = writable(s)
    if how then problems[#problems + 1] = "pairs(" .. path .. ") hands out a writable state table (" .. how .. ")" end
    walk(s, "pairs(" .. path .. ").state", seen, problems)
  end
  for k, v in f, s, i do
    for _, item in ipairs({ { k, path .. "[key " .. tostring(k) .. "]" }, { v, path .. "." .. tostring(k) } }) do
      local value, where = item[1], item[2]
      if type(value) == "table" then
        local how = writable(value)
        if how then problems[#problems + 1] = where .. " is writable (" .. how .. ")" end
        walk(value, where, seen, problems)
      end
    end
  end
end

test("pairs over every view yields no writable reference, no metatable, no real shared table", function()
  local probe = require_raw("probe")
  local roots = within(function(request, context) return probe.roots(request, context) end)
  local problems, seen = {}, {}
  local checked = 0
  for name, root in pairs(roots) do
    checked = checked + 1
    -- Per-request objects are the policy's own handles (writable only through their API).
    if name ~= "request" and name ~= "context" and name ~= "response" and name ~= "zone" and name ~= "loader_obj" then
      local how = writable(root)
      if how then problems[#problems + 1] = name .. " itself is writable (" .. how .. ")" end
    end
    walk(root, name, seen, problems)
  end
  check(checked >= 23, "only %d roots", checked)
  check(#problems == 0, "%d problem(s):\n       %s", #problems, concat(problems, "\n       "))
end)

test("pairs(string) hands out no real table; the string library stays intact", function()
  local _, state = G.pairs(G.string)
  eq(state, G.string, "the state pairs returns")
  raises(function() state.upper = function() return "PWNED" end end, "cannot set string.upper")
  raises(function() G.rawset(state, "upper", nil) end, "read-only")
  for _, lib in ipairs({ "table", "math", "utf8", "coroutine", "os", "json", "Response", "problems", "http", "cache", "loader", "upstreams", "ratelimit" }) do
    local _, s = G.pairs(G[lib])
    eq(s, G[lib], "pairs(" .. lib .. ") state")
    raises(function() s.x = 1 end, "read-only")
  end
  local _, s = G.pairs(G.require("gatehouse"))
  raises(function() s.Response = nil end, "read-only")
  eq(("x"):upper(), "X", "string method"); eq(G.string.upper("x"), "X", "string.upper")
  eq(G.getmetatable(""), false, "getmetatable('')")
end)

test("_G.tostring = ... errors at request time and leaves tostring intact for other modules", function()
  local attacker, victim = require_raw("attacker"), require_raw("victim")
  -- At load time the attacker changed only its own environment.
  eq(attacker.tostring_here(), "PWNED", "the attacker's own tostring")
  local t1, up1, up2, raw_lg, lg, defined, own_G = victim.probe()
  eq(t1, "1", "tostring in another module"); eq(up1, "X", "method"); eq(up2, "Y", "string.upper")
  eq(raw_lg, nil, "rawget(_G, 'loaded_global') elsewhere"); eq(lg, nil, "loaded_global elsewhere")
  eq(defined, nil, "another module's global"); eq(own_G, true, "_G == _ENV")
  eq(G.tostring, tostring, "G.tostring"); eq(real.rawget(G, "loaded_global"), nil, "G.loaded_global")
  eq(real.rawget(G, "_G"), nil, "G._G")
  -- At request time every global assignment is refused, naming the file.
  raises(function() run(function() attacker.set_existing_G() end) end, "cannot set global 'tostring' after plugins/attacker.lua has loaded")
  raises(function() run(function() attacker.set_existing_G_bare() end) end, "cannot set global 'print' after plugins/attacker.lua has loaded")
  raises(function() run(function() attacker.set_own_global() end) end, "cannot set global 'defined' after plugins/attacker.lua has loaded")
  raises(function() run(function() attacker.set_new_global() end) end, "cannot set global 'fresh' after plugins/attacker.lua has loaded")
  raises(function() run(function() attacker.rawset_global() end) end, "read-only")
  eq(victim.probe(), "1", "tostring in another module afterwards")
  eq(attacker.tostring_here(), "PWNED", "the attacker's own value is unchanged")
  eq(G.tostring, tostring, "G.tostring afterwards")
  local globals = attacker.globals()
  eq(globals.defined, 1, "pairs(_G) shows the module's own globals")
  eq(globals._G, attacker.env, "its _G")
  eq(attacker.mt_at_load, false, "getmetatable(_G) while loading")
  eq(attacker.mt_now(), false, "getmetatable(_G) after sealing")
end)

test("load in a module writes to that module's environment only", function()
  local attacker = require_raw("attacker")
  eq(attacker.chunk_env, attacker.env, "a loaded chunk's _ENV is the module's environment")
  eq(attacker.read_loaded_global(), 1, "the module sees the global its loaded chunk set")
  eq(select(5, require_raw("victim").probe()), nil, "another module does not")
  eq(real.rawget(G, "loaded_global"), nil, "G does not")
  raises(function() run(function() attacker.load_at_request() end) end, "cannot set global 'late' after plugins/attacker.lua has loaded")
  eq(attacker.load_explicit({}), 5, "load with an explicit environment")
  raises(function() attacker.load_explicit(nil) end, "attempt to") -- explicit nil: no environment at all
  local fn, err = attacker.load_binary()
  eq(fn, nil, "a binary chunk"); check(tostring(err):find("binary", 1, true), "binary chunk refused: %s", tostring(err))
end)

test("module views are deep, read-only and cached", function()
  local shared = G.require("shared")
  eq(shared, G.require("shared"), "require returns one view")
  eq(shared.value, 42, "a value")
  eq(shared.nested, shared.nested, "a nested view is cached")
  eq(shared.nested.deeper, shared.nested.deeper, "deeper")
  eq(shared.nested.deeper.y, 2, "deeper value")
  raises(function() shared.value = 1 end, "cannot set module 'shared'.value")
  raises(function() shared.nested.x = 1 end, "cannot set module 'shared'.nested.x")
  raises(function() shared.nested.deeper.y = 9 end, "read-only")
  raises(function() G.rawset(shared.nested, "x", 1) end, "read-only")
  raises(function() G.rawset(shared, "value", 1) end, "read-only")
  eq(require_raw("shared").nested.x, 1, "the real table is unchanged")
  eq(G.getmetatable(shared.nested), false, "metatable hidden")
  for k, v in G.pairs(shared) do
    if k == "nested" then eq(v, shared.nested, "pairs and indexing give the same view") end
    if type(k) == "table" then
      eq(shared[k], "table key", "a table key handed out by pairs indexes the view")
      eq(k, shared.keytable, "and is the same view as the field")
      raises(function() k[1] = "changed" end, "read-only")
    end
  end
  eq(G.require("fnmod")(), "fn", "a module returning a function")
  raises(function() G.require("missing") end, "module 'missing' not found in the plugin directories")
  raises(function() G.require("loop") end, "require loop: module 'loop' requires itself")
  eq(G.require("gatehouse").Response, G.Response, "require 'gatehouse' gives the globals' objects")
  eq(G.require("gatehouse.test"), G.require("gatehouse.test"), "gatehouse.test")
end)

test("#view and ipairs(view) work", function()
  local shared = G.require("shared")
  eq(#shared.list, 3, "#list")
  local items = {}
  for i, v in G.ipairs(shared.list) do items[i] = v end
  eq(concat(items, ","), "a,b,c", "ipairs")
  local seen = {}
  for i, v in G.pairs(shared.list) do seen[#seen + 1] = i .. "=" .. v end
  eq(#seen, 3, "pairs over a list view")
  eq(#G.string, 0, "#string")
  local ok = 0
  for _ in G.ipairs(G.string) do ok = ok + 1 end
  eq(ok, 0, "ipairs(string)")
end)

test("objects, context.log and env refuse raw writes", function()
  within(function(request, context)
    raises(function() G.rawset(request, "headers", {}) end, "read-only")
    raises(function() G.rawset(context, "custom", {}) end, "read-only")
    raises(function() G.rawset(request.headers, "get", print) end, "read-only")
    raises(function() context.log.info = print end, "context.log is read-only")
    raises(function() G.rawset(context.log, "info", print) end, "read-only")
    local r = G.Response.text("x")
    raises(function() G.rawset(r, "status", 1) end, "read-only")
    eq(G.getmetatable(request), "request", "request metatable name")
    eq(G.getmetatable(context.log), "log", "log metatable name")
  end)
  raises(function() G.rawset(G.env, "X", 1) end, "read-only")
  raises(function() G.env.X = 1 end, "env is read-only")
  eq(G.env.HOME_REGION, "eu", "env read")
end)

test("every table in G is a view or env", function()
  for k, v in real.next, G do
    if type(v) == "table" then check(is_view(v) or v == internal.env, "G.%s is a plain table", tostring(k)) end
  end
end)

test("context.log and problems turn values into text in Lua", function()
  within(function(_, context)
    context.log.info(G.setmetatable({}, { __tostring = function() return "an object" end }), { a = 1 })
    context.log.warn(nil)
    context.log.error(5, G.require("shared").nested)
    context.log.debug(G.setmetatable({}, { __tostring = function() error("boom") end }))
  end)
  local n = #logged
  eq(logged[n - 3].message, "an object", "__tostring message")
  eq(logged[n - 2].message, "nil", "nil message")
  eq(logged[n - 1].message, "5", "number message")
  eq(logged[n].message, "(table value)", "failing __tostring")
  within(function(request, context)
    G.problems.badRequest(request, context, { detail = 42 })
    G.problems.forbidden({ detail = G.setmetatable({}, { __tostring = function() return "no" end }) })
    G.problems.status(503, request, context, {})
  end)
  local m = #problems_made
  eq(problems_made[m - 2].detail, "42", "number detail"); eq(problems_made[m - 2].status, 400, "status")
  eq(problems_made[m - 1].detail, "no", "__tostring detail")
  eq(problems_made[m].detail, nil, "no detail"); eq(problems_made[m].status, 503, "problems.status")
end)

test("headers reach the host as plain string tables", function()
  local shared = G.require("shared")
  within(function(request)
    G.Response.new({ status = 201, headers = { a = 1, b = true, c = "x", d = 1.5 }, body = { ok = true } })
    G.Response.json({ v = shared.nested }, 200, shared.headers)
    G.Response.text("t", 200, request.headers)
    G.Response.redirect("/elsewhere")
  end)
  local n = #made
  local h = made[n - 3].headers
  eq(h.a, "1", "number"); eq(h.b, "true", "boolean"); eq(h.c, "x", "string"); eq(h.d, "1.5", "float")
  eq(made[n - 3].body, '{"ok":true}', "table body")
  eq(made[n - 2].headers["x-shared"], "yes", "headers from a module view"); eq(made[n - 2].headers["x-count"], "3", "number from a view")
  eq(made[n - 2].body, '{"v":{"deeper":{"y":2},"x":1}}', "a body holding a module view")
  eq(made[n - 1].headers.accept, "text/plain", "a header object's headers")
  eq(made[n].headers.location, "/elsewhere", "redirect location")
  local bad = require_raw("bad")
  raises(function() run(bad.table_header) end, "header 'x' must be a string or number, not a table", "plugins/bad.lua:")
  raises(function() run(bad.number_name) end, "header names must be strings, not a number", "plugins/bad.lua:")
  raises(function() run(bad.string_headers) end, "headers must be a table of name = value", "plugins/bad.lua:")
  raises(function() run(bad.table_location) end, "header 'location' must be a string or number, not a table", "plugins/bad.lua:")
  raises(function() run(bad.function_body) end, "json.encode: cannot convert a function value to JSON", "plugins/bad.lua:")
  raises(function() run(bad.encode_function) end, "json.encode: cannot convert a function value to JSON", "plugins/bad.lua:")
end)

test("http options reach the host as plain tables", function()
  local shared = G.require("shared")
  within(function()
    G.http.fetch("http://a/x", { method = "POST", timeout = 1, headers = { n = 5, s = "v" }, body = shared.nested })
    G.http.fetch("http://a/y", { headers = "ignored, as before" })
    G.http.fetch("http://a/z")
    G.http.all({ { "http://a/1", { headers = { a = 1 } } }, "http://a/2", { "http://a/3", "not a table" } }, { headers = shared.headers, timeout = 2 })
  end)
  local n = #fetched
  local o = fetched[n - 2].opts
  eq(o.method, "POST", "method"); eq(o.timeout, 1, "timeout"); eq(o.headers.n, "5", "number header"); eq(o.headers.s, "v", "string header")
  eq(G.getmetatable(o.body), nil, "a view body is handed over as the table behind it")
  eq(fetched[n - 1].opts.headers, nil, "non-table headers are ignored")
  eq(fetched[n].opts, nil, "no options")
  local all = fetched_all[#fetched_all]
  eq(all.calls[1][1], "http://a/1", "call url"); eq(all.calls[1][2].headers.a, "1", "call header")
  eq(all.calls[2], "http://a/2", "plain url"); eq(all.calls[3][2], "not a table", "non-table call options pass as before")
  eq(all.opts.headers["x-count"], "3", "shared option headers"); eq(all.opts.timeout, 2, "shared timeout")
  local bad = require_raw("bad")
  raises(function() run(bad.fetch_table_header) end, "header 'bad' must be a string or number, not a table", "plugins/bad.lua:")
  raises(function() run(bad.all_function_header) end, "http.all call #1: header 'bad' must be a string or number, not a function", "plugins/bad.lua:")
  raises(function() run(bad.fetch_number_options) end, "fetch options must be a table", "plugins/bad.lua:")
end)

test("request.user, cache and loader hand the host tables it can read", function()
  local shared = G.require("shared")
  within(function(request)
    request.user = shared.nested
    eq(request.user, shared.nested, "request.user reads back what was set")
    G.cache.zone("z", shared.nested):put("k", shared.nested, 10)
    G.loader.new("l2", function() end, shared.nested)
  end)
end)

test("plain: views become the tables behind them; everything else is left alone", function()
  local plain, shared = internal.plain, G.require("shared")
  local flat = { a = 1, b = "x" }
  eq(plain(flat), flat, "a flat table is returned as it is")
  local nested = { a = { b = 1 } }
  eq(plain(nested), nested, "a table without views is returned as it is")
  eq(plain(shared), require_raw("shared"), "a module view becomes the module's table")
  local mixed = { v = shared.nested, list = { shared.list } }
  local p = plain(mixed)
  check(p ~= mixed, "a table holding views is copied")
  eq(p.v, require_raw("shared").nested, "its view field"); eq(p.list[1], require_raw("shared").list, "a view in a nested list")
  eq(mixed.v, shared.nested, "the original is unchanged")
  local cycle = {}; cycle.self = cycle; cycle.v = shared.nested
  local pc = plain(cycle)
  eq(pc.v, require_raw("shared").nested, "a cyclic table's view field")
  raises(function() G.json.encode(cycle) end, "nesting deeper than 64 levels")
  eq(G.json.encode({ list = shared.list, n = shared.nested.deeper }), '{"list":["a","b","c"],"n":{"y":2}}', "views nested in a policy's table")
end)

test("print goes through the host", function()
  within(function() G.print("a", 1, nil, true) end)
  eq(printed[#printed], "a\t1\tnil\ttrue", "print")
end)

test("the host received only plain data", function()
  check(#violations == 0, "%d violation(s):\n       %s", #violations, concat(violations, "\n       "))
end)

print(format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
