-- Handler: try the customer's primary backend; on anything but a 200, the secondary one.
-- The chosen backend's response goes back to the client as it is.
return function(request, context)
  local path = "/" .. request.params.path
  local query = request.url:match("%?(.*)$")
  if query then path = path .. "?" .. query end
  local call = { method = request.method, timeout = 10, headers = { ["x-customer-id"] = context.custom.customerId } }
  local res, err = http.fetch(context.custom.primaryUrl .. path, call)
  if res ~= nil and res.status == 200 then return res end
  context.log.warn("primary backend failed; trying the secondary", { status = res and res.status or err })
  local fallback, fallbackErr = http.fetch(context.custom.secondaryUrl .. path, call)
  if fallback == nil then
    return problems.badGateway(request, context, { detail = "Both backends of this customer are unavailable." })
  end
  fallback.headers:set("x-gatehouse-failover", "secondary")
  return fallback
end
