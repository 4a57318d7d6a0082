-- Outbound: tells the client which environment answered (set by environment-routing).
return function(response, request, context)
  local environment = context.custom.environment
  if environment then
    response.headers:set("x-served-by", environment)
  end
  return response
end
