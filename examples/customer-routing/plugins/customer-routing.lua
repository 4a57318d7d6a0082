-- Customer isolation from a table in the configuration (options.customers in policies.json):
-- each customer's requests go to its own backend.
local policy = {
  name = "customer-routing",
  version = "1.0.0",
  options = {
    customers = { type = "object", required = true, description = "customerId -> { environmentName, backendUrl }" },
  },
}

function policy.inbound(request, context, options)
  local customerId = request.user and request.user.data.customerId
  if customerId == nil then
    return problems.unauthorized(request, context, { detail = "This API key is not linked to a customer." })
  end
  local customer = options.customers[customerId]
  if customer == nil then
    context.log.warn("customer has no backend", { customerId = customerId })
    return problems.forbidden(request, context, { detail = "Customer '" .. customerId .. "' has no backend configured." })
  end
  context.custom.downstreamUrl = customer.backendUrl
  request.headers:set("x-customer-environment", customer.environmentName)
  return request
end

return policy
