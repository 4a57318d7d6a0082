-- Stripe-style environment routing: the API key's metadata says which environment the caller
-- belongs to (sandbox, production, ...), and the options map each environment to a backend.
-- The url-rewrite handler then forwards to ${context.custom.downstreamUrl}/${params.path}.
local policy = { name = "environment-routing", version = "1.0.0" }

function policy.inbound(request, context, options)
  local user = request.user
  local environment = user and user.data and user.data.environment
  local backend = environment and options.backends and options.backends[environment]
  if backend == nil then
    -- Never a crash: an unknown or missing environment is the caller's problem, said clearly.
    context.log.warn("no backend for this environment", { environment = tostring(environment) })
    return problems.forbidden(request, context, {
      detail = "This API key is not assigned to a known environment.",
    })
  end
  context.custom.downstreamUrl = backend
  context.custom.environment = environment
  request.headers:set("x-gatehouse-environment", environment)
  return request
end

return policy
