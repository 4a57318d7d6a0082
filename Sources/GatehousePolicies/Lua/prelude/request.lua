-- gatehouse/request.lua: the `request` object inbound policies, outbound policies and handlers
-- receive.
--
-- Fields are read from the host on access; `headers` and the parsed `query`/`params` tables are
-- cached in the request's per-request state (core.lua's `objects`), and `user` is cached by the
-- host's user version, so reading them twice costs one host call. Only `method`, `path` and
-- `user` can be assigned; everything else goes through methods.
local host, internal = ...
local setmetatable, type, error, tostring = setmetatable, type, error, tostring
local check, objects, live, rid_of, plain = internal.check, internal.objects, internal.live, internal.rid_of, internal.plain

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

local RequestMT = { __metatable = "request", __readonly = true }
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
    o.user_version = host.request_set(rid, "user", plain(v))
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

internal.RequestMT = RequestMT
