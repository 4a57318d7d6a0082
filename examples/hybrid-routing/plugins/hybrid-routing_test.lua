local t = require "gatehouse.test"

return {
  { name = "a dedicated customer goes to its backend", policy = "hybrid-routing",
    request = { user = { sub = "acme", data = { customerId = "acme" } } },
    check = function(r)
      t.equal(r.context.custom.downstreamUrl, "http://127.0.0.1:9101")
      t.equal(r.request.headers["x-tenancy"], "dedicated")
    end },
  { name = "everyone else shares", policy = "hybrid-routing",
    request = { user = { sub = "wayne", data = { customerId = "wayne" } } },
    check = function(r) t.equal(r.context.custom.downstreamUrl, "http://127.0.0.1:9102") end },
  { name = "the whole route forwards to the shared backend", route = "GET /api/search?q=x",
    request = { headers = { authorization = "Bearer sk_wayne_3Vb8Nm1Kc6Zd" } },
    upstream = { status = 200, body = "[]" },
    check = function(r)
      t.equal(r.upstream.url, "http://127.0.0.1:9102/search?q=x")
      t.equal(r.response.body, "[]")
    end },
}
