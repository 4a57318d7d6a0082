import GatehouseTesting

/// A project exercising every policy behaviour of the core issue.
enum PolicyFixture {
    static func make() throws -> ConfigFixture {
        let forward = #"{ "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        func route(_ inbound: [String], _ outbound: [String] = [], handler: String = forward) -> String {
            let i = inbound.map { "\"\($0)\"" }.joined(separator: ", ")
            let o = outbound.map { "\"\($0)\"" }.joined(separator: ", ")
            return #"{ "handler": "# + handler + #", "policies": { "inbound": ["# + i + #"], "outbound": ["# + o + "] } }"
        }
        let routes = ConfigFixture.routes([
            ("GET", "/short", route(["short"])),
            ("GET", "/boom", route(["boom"])),
            ("GET", "/badreturn", route(["badreturn"])),
            ("GET", "/keeper", route(["keeper"])),
            ("GET", "/fwd/{+rest}", route(["setter"])),
            ("POST", "/body", route(["bodyreader"])),
            ("GET", "/hello/{name}", route([], handler: #"{ "type": "lua", "module": "$import(./plugins/hello)", "options": { "greeting": "hi" } }"#)),
            ("GET", "/failopen", route(["failopen", "short"])),
            ("GET", "/wrapped", route([], ["wrap"])),
            ("GET", "/user", route(["user-setter", "user-reader"])),
            ("GET", "/spin", route(["spin"])),
            ("GET", "/tight", route(["tight"])),
            ("GET", "/hop", route([])),
            ("GET", "/impatient", route(["impatient"])),
            ("POST", "/upload", route([])),
            ("GET", "/down", route([], handler: #"{ "type": "url-forward", "options": { "baseUrl": "http://127.0.0.1:1" } }"#)),
            ("GET", "/items/{id}", route([], handler: #"{ "type": "url-rewrite", "options": { "rewritePattern": "$env(UPSTREAM_MAIN)/v2/items/${params.id}?src=${headers.x-src}" } }"#)),
            ("GET", "/static", route([], handler: #"{ "type": "static", "options": { "status": 202, "headers": { "x-mock": "1" }, "body": "mocked" } }"#)),
        ])
        func lua(_ name: String, _ type: String = "custom-code-inbound", extra: String = "") -> String {
            #"{ "name": ""# + name + #"", "policyType": ""# + type + #"", "handler": { "module": "$import(./plugins/"# + name + #")" }"# + extra + " }"
        }
        let policies = #"{ "policies": ["# + [
            lua("short"), lua("boom"), lua("badreturn"), lua("keeper"), lua("setter"), lua("bodyreader"),
            lua("failopen", extra: #", "failMode": "open""#), lua("wrap", "custom-code-outbound"),
            lua("user-setter"), lua("user-reader"), lua("spin"),
            lua("tight", extra: #", "budget": { "instructions": 100000 }"#),
            lua("impatient", extra: #", "budget": { "wallClockMs": 300 }"#),
        ].joined(separator: ",\n") + "] }"
        return try ConfigFixture(files: [
            "config/routes.oas.json": routes,
            "config/policies.json": policies,
            "config/gatehouse.json": #"{ "upstreamTimeoutMs": 2000, "luaTimeBudgetMs": 200, "luaInstructionBudget": 100000000000, "maxBufferedBodyBytes": 2048, "maxRequestBodyBytes": 65536 }"#,
            "plugins/short.lua": "return function(request, context)\n  return Response.json({ short = true, id = context.requestId }, 418)\nend\n",
            "plugins/boom.lua": "return function(request, context)\n  local settings = nil\n  return settings.missing\nend\n",
            "plugins/badreturn.lua": "return function() return 42 end\n",
            "plugins/keeper.lua": """
                local previous
                return function(request)
                  if previous then
                    previous.headers:get("x-anything")
                  end
                  previous = request
                  return request
                end
                """,
            "plugins/setter.lua": """
                return function(request, context)
                  request.headers:set("x-added", "yes")
                  request.headers:remove("x-drop")
                  request:setQuery("added", "1")
                  request.path = "/changed/" .. request.params.rest
                  return request
                end
                """,
            "plugins/bodyreader.lua": """
                return function(request)
                  local body = request:json()
                  request.headers:set("x-amount", tostring(body.amount))
                  return request
                end
                """,
            "plugins/hello.lua": """
                return function(request, context, options)
                  return Response.json({ message = options.greeting .. " " .. request.params.name, route = context.route.path })
                end
                """,
            "plugins/failopen.lua": "return function() error('optional enrichment failed') end\n",
            "plugins/wrap.lua": """
                return function(response, request, context)
                  local upstream = response:json()
                  local wrapped = Response.json({ wrapped = upstream.upstream, status = response.status }, 201)
                  wrapped.headers:set("x-wrapped", "1")
                  return wrapped
                end
                """,
            "plugins/user-setter.lua": "return function(request)\n  request.user = { sub = 'lua-user', data = { tier = 'gold' } }\n  return request\nend\n",
            "plugins/user-reader.lua": """
                return function(request)
                  request.headers:set("x-tier", request.user.data.tier)
                  request.headers:set("x-sub", request.user.sub)
                  return request
                end
                """,
            "plugins/spin.lua": "return function()\n  while true do end\nend\n",
            // About 3M instructions: fine under the default budget, too much for its own.
            "plugins/tight.lua": "return function(request)\n  local n = 0\n  for i = 1, 1e6 do n = n + i end\n  return request\nend\n",
            // A fetch with a generous timeout of its own, longer than the policy's wall clock.
            "plugins/impatient.lua": "return function(request)\n  http.fetch(env.UPSTREAM_MAIN .. '/slow', { timeout = 30, headers = { ['x-echo-delay-ms'] = '5000' } })\n  return request\nend\n",
        ])
    }
}
