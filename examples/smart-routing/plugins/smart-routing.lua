-- Smart routing: each customer's routing record (the upstream group that serves it: a primary
-- tier and a secondary one, see config/upstreams.json) comes from a routing service over HTTP
-- and is cached for options.cacheSeconds in a zone shared by every event loop. The customer id
-- comes from the API key's metadata.
local records = cache.zone("ROUTE_INFO", { maxEntries = 10000 })

local policy = {
  name = "smart-routing",
  version = "1.0.0",
  options = {
    routingService = { type = "string", required = true, description = "base URL of the routing service" },
    cacheSeconds = { type = "number", default = 300, description = "how long a record is cached" },
  },
}

function policy.inbound(request, context, options)
  local customerId = request.user and request.user.data.customerId
  if customerId == nil then
    return problems.unauthorized(request, context, { detail = "This API key is not linked to a customer." })
  end
  local record = records:get(customerId)
  if record == nil then
    local res, err = http.fetch(options.routingService .. "/records/routing/" .. customerId, { timeout = 5 })
    if res == nil then
      context.log.error("routing service unreachable", { error = err })
      return problems.badGateway(request, context, { detail = "Routing information is unavailable." })
    end
    if res.status == 404 then
      return problems.notFound(request, context, { detail = "No routing information for customer '" .. customerId .. "'." })
    end
    if res.status ~= 200 then
      return problems.badGateway(request, context, { detail = "Routing information is unavailable." })
    end
    record = res:json()
    records:put(customerId, record, options.cacheSeconds)
  end
  -- The group's tiers do the failover; the backend gets the path after /api.
  context.custom.upstream = record.upstream
  request.path = "/" .. request.params.path
  request.headers:set("x-customer-id", customerId)
  return request
end

return policy
