-- W2 outbound: one header on every response.
return function(response)
  response.headers:set("x-gateway", "gatehouse")
  return response
end
