-- Defence in depth for Stripe-style keys: the key's own prefix must agree with the environment
-- in its metadata, so a test key filed against production by mistake can never touch live data.
return function(request, context, options)
  local header = request.headers:get("authorization") or ""
  local key = header:match("^[Bb]earer%s+(.+)$") or ""
  local environment = request.user and request.user.data.environment
  for prefix, expected in pairs(options.prefixes) do
    if key:sub(1, #prefix) == prefix and environment ~= expected then
      context.log.warn("key prefix and environment disagree", { prefix = prefix, environment = tostring(environment) })
      return problems.forbidden(request, context, {
        detail = "A " .. prefix .. "… key cannot be used against the " .. tostring(environment) .. " environment.",
      })
    end
  end
  return request
end
