local t = require "gatehouse.test"

-- Cases that need no routing service (the live test in ExampleTests.swift covers the rest).
return {
  { name = "a key without a customer id is a 401", policy = "smart-routing",
    request = { user = { sub = "x", data = {} } },
    check = function(r)
      t.equal(r.response.status, 401)
      t.contains(r.response.body, "not linked to a customer")
    end },
}
