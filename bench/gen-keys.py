#!/usr/bin/env python3
"""Generates the benchmark's API keys and the per-gateway data files that hold them.

keys.txt           one key per line (read by the wrk script)
consumers.json     Gatehouse consumers: SHA-256 digests + metadata
keys.lua           a Lua table key -> {environment, customerId} (nginx and HAProxy policies)
Half the keys are sandbox, half production. Deterministic for a given count.
"""
import hashlib, json, random, sys

count = int(sys.argv[1]); out = sys.argv[2]
rng = random.Random(42)
keys, consumers, lua = [], [], ["return {"]
for i in range(count):
    env = "sandbox" if i % 2 == 0 else "production"
    prefix = "sk_test_" if env == "sandbox" else "sk_live_"
    key = prefix + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))
    customer = "cust_%05d" % i
    keys.append(key)
    consumers.append({"sub": customer, "keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest()}],
                      "metadata": {"environment": env, "customerId": customer}})
    lua.append('  ["%s"] = { environment = "%s", customerId = "%s" },' % (key, env, customer))
lua.append("}")
open(out + "/keys.txt", "w").write("\n".join(keys) + "\n")
json.dump({"consumers": consumers}, open(out + "/consumers.json", "w"))
open(out + "/keys.lua", "w").write("\n".join(lua) + "\n")
