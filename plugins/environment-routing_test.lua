-- Policy tests for environment-routing: `gatehouse test` runs them in-process.
local t = require "gatehouse.test"

local function user(environment)
  return { sub = "acme-" .. environment, data = { environment = environment, customerId = "acme" } }
end

return {
  {
    name = "a sandbox consumer is routed to the sandbox backend",
    policy = "environment-routing",
    request = { path = "/v1/charges", user = user("sandbox") },
    check = function(result)
      t.equal(result.outcome, "continue")
      t.equal(result.context.custom.downstreamUrl, "http://127.0.0.1:9101")
      t.equal(result.request.headers["x-gatehouse-environment"], "sandbox")
    end,
  },
  {
    name = "a production consumer is routed to the production backend",
    policy = "environment-routing",
    request = { path = "/v1/charges", user = user("production") },
    check = function(result)
      t.equal(result.context.custom.downstreamUrl, "http://127.0.0.1:9102")
    end,
  },
  {
    name = "an unknown environment is a 403 problem, not an error",
    policy = "environment-routing",
    request = { path = "/v1/charges", user = user("staging") },
    check = function(result)
      t.equal(result.outcome, "respond")
      t.equal(result.response.status, 403)
      t.equal(result.response.headers["content-type"], "application/problem+json")
      t.contains(result.response.body, "not assigned to a known environment")
    end,
  },
  {
    name = "the whole route: a test key reaches the sandbox with the path rewritten",
    route = "GET /v1/customers/42?expand=true",
    request = { headers = { authorization = "Bearer sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc" } },
    upstream = { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"id":42}' },
    check = function(result)
      t.equal(result.upstream.url, "http://127.0.0.1:9101/customers/42?expand=true")
      t.equal(result.upstream.headers["x-gatehouse-environment"], "sandbox")
      t.equal(result.response.status, 200)
      t.equal(result.response.headers["x-served-by"], "sandbox")
      t.equal(result.response.body, '{"id":42}')
    end,
  },
  {
    name = "the whole route: no key is a 401 and nothing is forwarded",
    route = "GET /v1/customers/42",
    check = function(result)
      t.equal(result.response.status, 401)
      t.equal(result.upstream, nil)
    end,
  },
}
