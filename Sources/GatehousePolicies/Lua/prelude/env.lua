-- gatehouse/env.lua: the read-only `env` table (the gateway's environment: the process
-- environment over config/.env).
--
-- Each read asks the host; nothing is stored in the table, and it is marked __readonly so
-- `rawset` cannot plant a value every module would then read.
local host, internal = ...
local setmetatable, error = setmetatable, error

internal.env = setmetatable({}, {
  __index = function(_, name) return host.env_get(name) end,
  __newindex = function() error("env is read-only", 2) end,
  __metatable = "env",
  __readonly = true,
})
