-- Hybrid multi-tenant: customers with a dedicated backend go there, everyone else shares one.
local policy = {
  name = "hybrid-routing",
  version = "1.0.0",
  options = {
    dedicated = { type = "object", default = {}, description = "customerId -> dedicated backend URL" },
    shared = { type = "string", required = true, description = "the shared multi-tenant backend" },
  },
}

function policy.inbound(request, context, options)
  local customerId = request.user and request.user.data.customerId
  local dedicated = customerId and options.dedicated[customerId]
  context.custom.downstreamUrl = dedicated or options.shared
  context.log.info("routing decision", { customerId = tostring(customerId), backend = dedicated and "dedicated" or "shared" })
  request.headers:set("x-tenancy", dedicated and "dedicated" or "shared")
  return request
end

return policy
