-- Customer routing whose table lives in a customer service: the background loader returns the
-- cached record at once, refreshes it in the background once it is older than the TTL, and runs
-- at most one load per customer at a time across the whole gateway.
local service -- set from the options on first use (module code runs before any request)

local customers = loader.new("customers", function(customerId)
  local res, err = http.fetch(service .. "/records/customers/" .. customerId, { timeout = 5 })
  if res == nil then return nil, err end
  if res.status == 404 then return { known = false } end -- cache the answer "unknown" too
  if res.status ~= 200 then return nil, "customer service answered " .. res.status end
  local record = res:json()
  record.known = true
  return record
end, { ttl = 300, timeout = 5 })

return {
  name = "dynamic-customer-routing",
  version = "1.0.0",
  options = {
    customerService = { type = "string", required = true, description = "base URL of the customer service" },
    refreshSeconds = { type = "number", default = 300, description = "documented TTL of the loader" },
  },
  inbound = function(request, context, options)
    service = options.customerService
    local customerId = request.user and request.user.data.customerId
    if customerId == nil then
      return problems.unauthorized(request, context, { detail = "This API key is not linked to a customer." })
    end
    local customer, err = customers:get(customerId)
    if customer == nil then
      context.log.error("customer service unavailable", { error = err })
      return problems.serviceUnavailable(request, context, { detail = "Customer configuration is unavailable." })
    end
    if not customer.known then
      return problems.forbidden(request, context, { detail = "Customer '" .. customerId .. "' has no backend configured." })
    end
    context.custom.downstreamUrl = customer.backendUrl
    return request
  end,
}
