local t = require "gatehouse.test"

return {
  {
    name = "stamps the environment the request was routed to",
    policy = "served-by",
    request = { path = "/v1/x" },
    response = { status = 200, body = "{}" },
    check = function(result)
      t.equal(result.outcome, "respond")
      -- No routing policy ran, so nothing says which environment served it.
      t.equal(result.response.headers["x-served-by"], nil)
    end,
  },
}
