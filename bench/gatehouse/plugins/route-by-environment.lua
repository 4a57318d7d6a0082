-- W1: the API key's consumer (set by api-key-inbound) picks the backend; the customer id is
-- passed upstream. Same policy as bench/nginx/gateway.conf and bench/haproxy/policy.lua.
return function(request, context, options)
  local data = request.user.data
  local backend = options.backends[data.environment]
  if backend == nil then
    return problems.forbidden(request, context, { detail = "unknown environment" })
  end
  context.custom.downstreamUrl = backend
  request.headers:set("x-customer-id", data.customerId)
  return request
end
