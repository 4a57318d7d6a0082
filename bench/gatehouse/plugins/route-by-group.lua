-- W3: W1's policy, choosing an upstream group (two targets each, breakers on) instead of a URL.
return function(request, context)
  local data = request.user.data
  local group = data.environment
  if group ~= "sandbox" and group ~= "production" then
    return problems.forbidden(request, context, { detail = "unknown environment" })
  end
  context.custom.upstream = group
  request.headers:set("x-customer-id", data.customerId)
  return request
end
