local t = require "gatehouse.test"

local function call(key, environment)
  return {
    headers = { authorization = "Bearer " .. key },
    user = { sub = "acme", data = { environment = environment } },
  }
end

return {
  {
    name = "a test key filed against production is refused",
    policy = "environment-guard",
    request = call("sk_test_abc", "production"),
    check = function(result)
      t.equal(result.response.status, 403)
      t.contains(result.response.body, "cannot be used against the production environment")
    end,
  },
  {
    name = "a live key in production goes on",
    policy = "environment-guard",
    request = call("sk_live_abc", "production"),
    check = function(result) t.equal(result.outcome, "continue") end,
  },
  {
    name = "a test key in the sandbox goes on",
    policy = "environment-guard",
    request = call("sk_test_abc", "sandbox"),
    check = function(result) t.equal(result.outcome, "continue") end,
  },
}
