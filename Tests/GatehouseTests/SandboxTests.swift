import Foundation
import GatehouseTesting
import Testing

/// Every escape attempt and resource attack, as a policy behind the real gateway: each is
/// answered with a 500 problem naming the policy, and a canary policy then shows that the VM,
/// the shared libraries and shared modules are intact.
@Suite(.serialized) struct SandboxTests {
    static let attacks: [(name: String, body: String)] = [
        ("replace-string-function", "string.len = function() return 0 end"),
        ("rawset-library", "rawset(string, 'len', nil)"),
        ("reach-real-string-table", "getmetatable('').__index.len = nil"),
        ("replace-table-function", "table.insert = nil"),
        ("change-shared-module", "require('shared').value = 1"),
        ("rawset-shared-module", "rawset(require('shared'), 'value', 1)"),
        ("set-shared-global", "_G.leak = 1"),
        ("rawset-globals", "rawset(_G, 'leak', 1)"),
        ("set-global-at-request-time", "leak = 1"),
        ("open-a-file", "io.open('/etc/passwd')"),
        ("run-a-command", "os.execute('id')"),
        ("read-environment-via-os", "os.getenv('HOME')()"),
        ("dump-bytecode", "string.dump(function() end)"),
        ("load-binary-chunk", "assert(load('\\27Lua\\84\\0'))"),
        ("dofile", "dofile('/etc/passwd')"),
        ("loadfile", "loadfile('/etc/passwd')"),
        ("package-loadlib", "package.loadlib('libc.so.6', 'system')"),
        ("debug-library", "debug.getinfo(1)"),
        ("require-outside-plugins", "require('../../etc/passwd')"),
        ("require-absolute-path", "require('/etc/passwd')"),
        ("stop-the-collector", "collectgarbage('stop')"),
        ("finalizer", "setmetatable({}, { __gc = function() end })"),
        ("replace-api", "Response.json = nil"),
        ("runaway-loop", "while true do end"),
        ("loop-inside-pcall", "while true do pcall(function() while true do end end) end"),
        ("error-in-xpcall-handler", "local ok, e = xpcall(function() error('first') end, function() error('in the handler') end) error(e)"),
        ("memory-bomb", "local s = 'x' while true do s = s .. s end"),
        ("huge-table", "local t = {} for i = 1, 1e9 do t[i] = i end"),
        ("deep-recursion", "local function f(n) return 1 + f(n + 1) end f(1)"),
        ("pattern-bomb", "string.find(string.rep('a', 300), '.-.-.-b')"),
        ("pattern-bomb-method", "(string.rep('a', 300)):match('.*.*.*b')"),
        ("pattern-lazy-chars", "string.find(string.rep('a', 300), 'a-a-a-a-b')"),
        ("pattern-class-repeats", "string.match(string.rep('a', 300), '%w+%w+%w+b')"),
        ("pattern-set-repeats", "string.gsub(string.rep('ab', 150), '[ab]+[ab]+[ab]+c', '')"),
        ("pattern-gmatch", "for m in string.gmatch(string.rep('a', 300), 'a*a*a*a*b') do end"),
        // Budgets whatever Lua-level protection stands in between.
        ("xpcall-handler-loops", "xpcall(function() error('x') end, function() while true do end end)"),
        ("handler-loops-after-budget", "xpcall(function() while true do end end, function() while true do end end)"),
        ("loop-in-resumed-coroutine", "coroutine.resume(coroutine.create(function() while true do end end))"),
        ("loop-in-wrapped-coroutine", "pcall(coroutine.wrap(function() while true do end end))"),
        ("loop-in-metamethod", "pcall(function() return setmetatable({}, { __index = function() while true do end end }).x end)"),
        ("loop-in-gsub-callback", "pcall(string.gsub, 'abc', '%w', function() while true do end end)"),
        ("memory-bomb-in-handler", "xpcall(function() error('x') end, function() local s = 'x' while true do s = s .. s end end)"),
        // The real tables behind the read-only views, and the shared globals.
        ("pairs-hands-out-string", "local _, real = pairs(string) real.upper = function() return 'PWNED' end"),
        ("pairs-hands-out-json", "local _, real = pairs(json) real.encode = nil"),
        ("pairs-hands-out-api", "local _, real = pairs(require('gatehouse')) real.json = nil"),
        ("iterate-and-replace", "for k, v in pairs(string) do if type(v) == 'table' then v.x = 1 end end string.upper = nil"),
        ("replace-global-tostring", "_G.tostring = function() return 'PWNED' end"),
        ("replace-global-type", "_G.type = nil"),
        ("replace-global-library", "_G.string = { upper = function() return 'PWNED' end }"),
        ("load-with-default-env", "load('tostring = nil')() error('load changed nothing')"),
        ("nested-module-table", "require('shared').nested.v = 1"),
        ("replace-log-function", "context.log.info = nil"),
        // A __tostring that changes the table the host is walking (a longjmp through Swift once).
        ("tostring-changes-headers", """
          local h = {}
          for i = 1, 20 do h['x-h' .. i] = 'v' end
          h['x-a'] = setmetatable({}, { __tostring = function()
            for k in pairs(h) do h[k] = nil end
            for i = 1, 100 do h['y' .. i] = 'z' end
            return 'v'
          end })
          do return Response.new({ headers = h }) end
          """),
    ]

    static func fixture() throws -> ConfigFixture {
        var files: [String: String] = [
            "plugins/lib/shared.lua": "return { value = 42, nested = { v = 2 } }\n",
            "plugins/canary.lua": """
                local shared = require("shared")
                return function(request, context)
                  local ok = string.len("abc") == 3 and table.insert ~= nil and shared.value == 42
                    and rawget(_G, "leak") == nil and Response.json ~= nil and getmetatable("") == false
                    and string.upper("a") == "A" and ("x"):upper() == "X" and tostring(1) == "1"
                    and type(tostring) == "function" and type(json.encode) == "function" and shared.nested.v == 2
                    and require("gatehouse").json ~= nil and context.log.info ~= nil
                  return Response.json({ ok = ok, leak = tostring(leak) })
                end
                """,
            "config/gatehouse.json": #"{ "luaTimeBudgetMs": 300, "luaMemoryLimitBytes": 33554432 }"#,
        ]
        var operations: [(method: String, path: String, route: String)] = [
            ("GET", "/canary", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["canary"] } }"#)
        ]
        var policies = [#"{ "name": "canary", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/canary)" } }"#]
        for attack in attacks {
            files["plugins/\(attack.name).lua"] = "return function(request, context)\n  \(attack.body)\n  return request\nend\n"
            operations.append(("GET", "/\(attack.name)", #"{ "handler": { "type": "static" }, "policies": { "inbound": [""# + attack.name + #""] } }"#))
            policies.append(#"{ "name": ""# + attack.name + #"", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/"# + attack.name + #")" } }"#)
        }
        files["config/routes.oas.json"] = ConfigFixture.routes(operations)
        files["config/policies.json"] = #"{ "policies": ["# + policies.joined(separator: ",") + "] }"
        return try ConfigFixture(files: files)
    }

    @Test func everyAttemptIsAProblemAndTheVMStaysIntact() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, logs in
            for attack in Self.attacks {
                let r = try await send(gateway.baseURL + "/\(attack.name)")
                #expect(r.status == 500, "\(attack.name) was not stopped: \(r.status) \(r.body)")
                #expect(r.json["type"] as? String == "urn:gatehouse:problem:policy-error", "\(attack.name)")
                #expect(logs.all.contains { $0.metadata["policy"] == attack.name && $0.level == .error }, "\(attack.name) is logged")
                // Both VMs (two event loops) keep serving, with the shared state untouched.
                for _ in 0..<4 {
                    let canary = try await send(gateway.baseURL + "/canary")
                    #expect(canary.status == 200, "after \(attack.name): \(canary.body)")
                    #expect(canary.json["ok"] as? Bool == true, "after \(attack.name): \(canary.body)")
                    #expect(canary.json["leak"] as? String == "nil", "after \(attack.name)")
                }
            }
            let budgets = logs.all.compactMap { $0.metadata["budget"] }
            #expect(budgets.contains("time") || budgets.contains("instruction"))
            #expect(budgets.contains("memory"))
        }
    }
}
