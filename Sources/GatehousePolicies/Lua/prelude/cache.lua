-- gatehouse/cache.lua: `cache.zone(name, opts)`, named zones shared by every VM of the process.
--
-- A zone object only holds its name; every call goes to the host, which copies values in and
-- out as JSON (so a value put by one VM is never a table another VM shares).
local host, internal = ...
local setmetatable, type, error = setmetatable, type, error
local plain = internal.plain

local Zone = {}
Zone.__index = Zone
Zone.__metatable = "zone"
function Zone:get(key) return host.cache_get(self.name, key) end
function Zone:put(key, value, ttl) host.cache_put(self.name, key, plain(value), ttl) end
function Zone:delete(key) host.cache_delete(self.name, key) end

-- A Redis zone (`store = "redis"`): the same methods, each waiting for Redis (the policy's
-- coroutine yields). get returns nil, err and put/delete nil, err when Redis cannot answer.
local RedisZone = {}
RedisZone.__index = RedisZone
RedisZone.__metatable = "zone"
function RedisZone:get(key) return host.cache_redis_get(self.name, key) end
function RedisZone:put(key, value, ttl) return host.cache_redis_put(self.name, key, plain(value), ttl) end
function RedisZone:delete(key) return host.cache_redis_delete(self.name, key) end

local cache = {}
function cache.zone(name, opts)
  if type(name) ~= "string" then error("cache.zone expects a zone name", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("cache.zone options must be a table", 2) end
  host.cache_zone(name, plain(opts))
  if opts ~= nil and opts.store == "redis" then return setmetatable({ name = name, store = "redis" }, RedisZone) end
  return setmetatable({ name = name }, Zone)
end

internal.cache = cache
