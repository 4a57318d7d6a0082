-- gatehouse/http.lua: `http.fetch` and `http.all`, non-blocking calls to other services (the
-- host yields the policy's coroutine; the event loop does not wait).
--
-- Options are copied here into fresh plain tables (method, timeout, body, headers as strings)
-- before they reach the host: the host reads tables raw and must never run Lua code, so it
-- gets neither metatables nor read-only views nor values that need `tostring`.
local host, internal = ...
local type, error = type, error
local response_obj, header_fields, plain = internal.response_obj, internal.header_fields, internal.plain

-- A plain copy of fetch options `opts` (nil stays nil); errors are raised at the caller's `level`.
local function fetch_options(opts, level, what)
  if opts == nil then return nil end
  if type(opts) ~= "table" then error("fetch options must be a table {method=, headers=, body=, timeout=, upstream=}", level + 1) end
  local headers = opts.headers
  if type(headers) == "table" then headers = header_fields(headers, level + 1, what) else headers = nil end
  local upstream = opts.upstream
  if upstream ~= nil and type(upstream) ~= "string" then error((what or "") .. "fetch option upstream must be a group name", level + 1) end
  return { method = opts.method, timeout = opts.timeout, body = plain(opts.body), headers = headers, upstream = upstream }
end

local http = {}
function http.fetch(url, opts)
  if type(url) ~= "string" then error("http.fetch expects a URL string", 2) end
  local rid, index = host.http_fetch(url, fetch_options(opts, 2))
  if rid == nil then return nil, index end
  return response_obj(rid, index)
end
function http.all(calls, opts)
  if type(calls) ~= "table" then error("http.all expects a list of {url, options}", 2) end
  local n = #calls
  local list = {}
  for i = 1, n do
    local call = calls[i]
    if type(call) == "table" then
      local options = call[2]
      if type(options) == "table" then options = fetch_options(options, 2, "http.all call #" .. i .. ": ") end
      list[i] = { call[1], options }
    else
      list[i] = call
    end
  end
  local raw = host.http_all(list, fetch_options(opts, 2))
  local results = {}
  for i = 1, n do
    local r = raw[i]
    if r.rid ~= nil then results[i] = { response = response_obj(r.rid, r.index) }
    else results[i] = { error = r.error } end
  end
  return results
end

internal.http = http
