local t = require "gatehouse.test"
local function claims(c) return { user = { sub = "u", data = c } } end

return {
  { name = "an enterprise tenant goes to its own deployment", policy = "tenant-routing",
    request = claims({ tenant_id = "acme", subscription_tier = "enterprise" }),
    check = function(r) t.equal(r.context.custom.downstreamUrl, "http://127.0.0.1:9101/tenants/acme") end },
  { name = "other tiers share", policy = "tenant-routing",
    request = claims({ tenant_id = "acme", subscription_tier = "pro" }),
    check = function(r) t.equal(r.context.custom.downstreamUrl, "http://127.0.0.1:9102") end },
  { name = "a tenant id that is not a host label is refused", policy = "tenant-routing",
    request = claims({ tenant_id = "evil.example.com/x", subscription_tier = "enterprise" }),
    check = function(r) t.equal(r.response.status, 403) end },
}
