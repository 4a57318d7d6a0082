-- gatehouse/response.lua: response objects and the `Response` constructors.
--
-- A response object stands for response k of a request (an upstream's answer, one made by
-- `Response.*` or `problems.*`, or one fetched with `http`); there is one object per response,
-- kept in the request's state. The constructors are `Response.*` (class-like, as `new
-- Response()` elsewhere) so they never clash with an outbound policy's `response` parameter,
-- whose :json()/:text() read the body. Headers and JSON bodies are turned into plain tables
-- here (header_fields, encode), so the host only ever reads strings.
local host, internal = ...
local setmetatable, type, error, tostring = setmetatable, type, error, tostring
local check, register, index_of, objects, live, rid_of = internal.check, internal.register, internal.index_of, internal.objects, internal.live, internal.rid_of
local headers_obj, header_fields, encode = internal.headers_obj, internal.header_fields, internal.encode

local Response = {}
function Response.text(res) return host.body_text(check(res, "response", 2), index_of[res]) end
function Response.json(res)
  local text, err = host.body_text(check(res, "response", 2), index_of[res])
  if text == nil then return nil, err end
  return host.json_decode(text)
end
function Response.setBody(res, body) host.body_set(check(res, "response", 2), index_of[res], body) end

local ResponseMT = { __metatable = "response", __readonly = true }
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

-- The object of response `index` of request `rid` (one per response).
local function response_obj(rid, index)
  local o = objects[rid]
  local res = o.responses[index]
  if res == nil then
    res = register(setmetatable({}, ResponseMT), rid, "response", index)
    o.responses[index] = res
  end
  return res
end

-- Constructors ----------------------------------------------------------------------------
local Response_lib = {}
function Response_lib.new(spec)
  spec = spec or {}
  if type(spec) ~= "table" then error("Response.new expects a table {status=, headers=, body=}", 2) end
  local body = spec.body
  local headers = header_fields(spec.headers, 2)
  local rid, index
  if type(body) == "table" then
    rid, index = host.response_new(spec.status or 200, headers, encode(body, 2), "application/json")
  else
    rid, index = host.response_new(spec.status or 200, headers, body, nil)
  end
  return response_obj(rid, index)
end
function Response_lib.json(value, status, headers)
  local fields = header_fields(headers, 2)
  local rid, index = host.response_new(status or 200, fields, encode(value, 2), "application/json")
  return response_obj(rid, index)
end
function Response_lib.text(text, status, headers)
  local fields = header_fields(headers, 2)
  local rid, index = host.response_new(status or 200, fields, tostring(text), "text/plain; charset=utf-8")
  return response_obj(rid, index)
end
function Response_lib.redirect(location, status)
  local rid, index = host.response_new(status or 302, header_fields({ location = location }, 2), nil, nil)
  return response_obj(rid, index)
end

internal.ResponseMT = ResponseMT
internal.response_obj = response_obj
internal.Response_lib = Response_lib
