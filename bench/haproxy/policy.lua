-- HAProxy + Lua running W1 (same policy as nginx's and Gatehouse's).
package.path = os.getenv("BENCH_WORK") .. "/?.lua;" .. package.path
local consumers = require("keys")

core.register_action("apikey", { "http-req" }, function(txn)
  local auth = txn.http:req_get_headers()["authorization"]
  local value = auth and auth[0]
  local key = value and value:match("^Bearer%s+(.+)$")
  local consumer = key and consumers[key]
  if consumer then
    txn:set_var("txn.env", consumer.environment)
    txn.http:req_set_header("X-Customer-Id", consumer.customerId)
  end
end)
