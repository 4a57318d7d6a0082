-- Exports are limited per organisation, not per key: every key of an organisation draws on one
-- bucket, and paying organisations get a larger one. The key function picks both.
return {
  exportKey = function(request, context, policyName)
    local data = request.user and request.user.data or {}
    if data.org == nil then return { key = "anonymous" } end
    return { key = "org:" .. data.org, tier = data.tier == "free" and "free" or "paid" }
  end,
}
