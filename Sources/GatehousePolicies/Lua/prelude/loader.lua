-- gatehouse/loader.lua: `loader.new(name, fn, opts)`, values loaded in the background and
-- cached for the whole process (one load per key at a time, across every VM).
--
-- The load function itself runs through drivers.lua's `run_loader`.
local host, internal = ...
local setmetatable, type, error = setmetatable, type, error
local plain = internal.plain

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
  host.loader_register(name, fn, plain(opts))
  return setmetatable({ name = name }, Loader)
end

internal.loader = loader
