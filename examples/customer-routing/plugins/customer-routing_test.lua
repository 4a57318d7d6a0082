local t = require "gatehouse.test"
local function as(customerId) return { path = "/api/invoices", user = { sub = "x", data = { customerId = customerId } } } end

return {
  { name = "acme goes to its own backend", policy = "customer-routing", request = as("acme"),
    check = function(r)
      t.equal(r.context.custom.downstreamUrl, "http://127.0.0.1:9101")
      t.equal(r.request.headers["x-customer-environment"], "acme")
    end },
  { name = "a customer missing from the table is a 403", policy = "customer-routing", request = as("stark"),
    check = function(r) t.equal(r.response.status, 403) end },
  { name = "a key without a customer id is a 401", policy = "customer-routing",
    request = { user = { sub = "x", data = {} } },
    check = function(r) t.equal(r.response.status, 401) end },
}
