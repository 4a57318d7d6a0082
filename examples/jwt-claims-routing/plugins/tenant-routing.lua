-- Routes by JWT claims (set on request.user.data by jwt-inbound): enterprise tenants go to their
-- own deployment, everyone else to the shared one.
local policy = {
  name = "tenant-routing",
  version = "1.0.0",
  options = {
    enterpriseUrlTemplate = { type = "string", required = true, description = "URL with {tenant}, e.g. https://{tenant}.api.example.com" },
    sharedUrl = { type = "string", required = true, description = "the shared deployment" },
  },
}

function policy.inbound(request, context, options)
  local claims = request.user.data
  local tenant, tier = claims.tenant_id, claims.subscription_tier
  if tier == "enterprise" and tenant ~= nil then
    -- The tenant id becomes part of a host name: accept only what is safe there.
    if type(tenant) ~= "string" or not tenant:match("^[a-z0-9][a-z0-9-]*$") or #tenant > 63 then
      return problems.forbidden(request, context, { detail = "The token's tenant_id is not a valid tenant name." })
    end
    context.custom.downstreamUrl = options.enterpriseUrlTemplate:gsub("{tenant}", tenant)
  else
    context.custom.downstreamUrl = options.sharedUrl
  end
  request.headers:set("x-tenant-id", tostring(tenant or ""))
  return request
end

return policy
