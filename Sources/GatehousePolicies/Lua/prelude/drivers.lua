-- gatehouse/drivers.lua: the per-request state and the entry points Swift calls.
--
-- Swift runs every policy, handler and load function through one of the `run_*` drivers (in a
-- coroutine of its own). A driver opens the request's Lua state on first use (its request,
-- context and headers objects, its `context.custom` table), calls the function, and turns what
-- it returned into a result code (internal.RESULT) that Swift checks, so Swift never has to
-- inspect a Lua object. Swift ends a request by clearing its entries in `live` and `objects`.
local host, internal = ...
local setmetatable, type, tostring = setmetatable, type, tostring
local objects, live, rid_of, kind_of, index_of, register = internal.objects, internal.live, internal.rid_of, internal.kind_of, internal.index_of, internal.register
local RequestMT, ContextMT, headers_obj, response_obj = internal.RequestMT, internal.ContextMT, internal.headers_obj, internal.response_obj
local RESULT = internal.RESULT
local CONTINUE, INVALID, LOAD_FAILED = RESULT.CONTINUE, RESULT.INVALID, RESULT.LOAD_FAILED

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

-- CONTINUE for the request itself (when allowed), k for response k of this request, else
-- INVALID and the type of what was returned (a Gatehouse object's kind, if it is one).
local function result_code(rid, result, allow_request)
  local o = objects[rid]
  if allow_request and result == o.request then return CONTINUE end
  if rid_of[result] == rid and kind_of[result] == "response" then return index_of[result] end
  local t = type(result)
  if t == "table" then
    local kind = kind_of[result]
    if kind ~= nil then t = kind end
  end
  return INVALID, t
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

-- A background loader's load function: CONTINUE and the value (as the host can read it), or
-- LOAD_FAILED and a message.
local function run_loader(fn, rid, key)
  open(rid)
  local value, err = fn(key)
  if value == nil then return LOAD_FAILED, tostring(err or "the load function returned nil") end
  return CONTINUE, internal.plain(value)
end

-- A rate-limit key function (`rateLimitBy: "function"`): fn(request, context, policyName) → a
-- table ({ key, tier } or { key, requestsPerMinute, burst }) or nil (this request is not
-- limited); CONTINUE and the value as the host can read it.
local function run_keyfn(fn, rid, name)
  local o = open(rid)
  return CONTINUE, internal.plain(fn(o.request, o.context, name))
end

internal.open = open
internal.run_keyfn = run_keyfn
internal.run_inbound = run_inbound
internal.run_outbound = run_outbound
internal.run_handler = run_handler
internal.run_loader = run_loader
