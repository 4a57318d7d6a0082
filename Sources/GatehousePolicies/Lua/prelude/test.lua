-- gatehouse/test.lua: the assertions of `require "gatehouse.test"`, for policy tests
-- (`gatehouse test`). Each raises an error pointing at the caller's line.
local host, internal = ...
local type, error, tostring, pairs, pcall = type, error, tostring, pairs, pcall
local format, find = string.format, string.find
local json_encode, plain = host.json_encode, internal.plain

local testlib = {}
local function describe(v)
  if type(v) == "string" then return format("%q", v) end
  if type(v) == "table" then
    local ok, text = pcall(json_encode, plain(v))
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
  if type(text) ~= "string" or not find(text, fragment, 1, true) then
    error((message and message .. ": " or "") .. "expected " .. describe(text) .. " to contain " .. describe(fragment), 2)
  end
end

internal.testlib = testlib
