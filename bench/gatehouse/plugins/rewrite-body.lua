-- W2 inbound: read the small JSON body, change it, forward the new one.
return function(request)
  local body = request:json()
  body.seen = true
  request:setBody(json.encode(body))
  return request
end
