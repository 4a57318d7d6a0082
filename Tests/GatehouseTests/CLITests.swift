import Foundation
import GatehouseTesting
import Testing

/// `gatehouse check` and `gatehouse serve` as a user runs them: the built binary, exit codes, messages.
@Suite struct CLITests {
    func binary() throws -> String { try GatewayProcess.binary() }

    /// Starts `gatehouse serve` on `fixture` on a random port (no file watching).
    func serve(_ fixture: ConfigFixture, environment: [String: String]? = nil, standardError: Pipe? = nil) throws -> (Process, Int) {
        let port = 20_000 + Int.random(in: 0..<20_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = ["serve", "--config", fixture.configDirectory, "--plugins", fixture.pluginDirectory, "--port", "\(port)", "--no-watch"]
        if let environment { process.environment = environment }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = standardError ?? FileHandle.nullDevice
        try process.run()
        return (process, port)
    }

    /// Runs the binary; `output` is stdout then stderr, `stdout` alone.
    func run(_ arguments: [String]) throws -> (status: Int32, output: String, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: ConfigFixture.repositoryRoot())
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout + stderr, stdout)
    }

    @Test func checkAcceptsTheShippedConfig() throws {
        let result = try run(["check", "--config", "config", "--plugins", "plugins"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("OK: 5 routes"))
    }

    @Test func checkReportsAPluginSyntaxErrorWithFileAndLineAndFails() throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["broken"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "broken", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/broken)" } } ] }"#,
            "plugins/broken.lua": "return function(request)\n  if request then\n    return request\nend\n",
        ])
        defer { fixture.remove() }
        let result = try run(["check", "--config", fixture.configDirectory, "--plugins", fixture.pluginDirectory])
        #expect(result.status == 1)
        #expect(result.output.contains("policy 'broken'"))
        #expect(result.output.contains("plugins/broken.lua:5: 'end' expected"), "\(result.output)")
        #expect(result.output.contains("policies.json"))
    }

    @Test func serveRefusesAMissingConfigWithANonZeroExit() throws {
        let result = try run(["serve", "--config", "/nonexistent/config", "--port", "0"])
        #expect(result.status == 2)
        #expect(result.output.contains("/nonexistent/config/routes.oas.json: file not found"))
    }

    @Test func policyTestsOfTheShippedPluginsPass() throws {
        let result = try run(["test"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("6 passed, 0 failed"))
        let example = try run(["test", "--config", "examples/environment-routing/config",
                               "--plugins", "examples/environment-routing/plugins", "--plugin-path", "plugins"])
        #expect(example.status == 0, "\(example.output)")
        #expect(example.output.contains("3 passed, 0 failed"))
    }

    /// `gatehouse test` routes and presents paths as the server does: normalised, and a path
    /// the server refuses is reported as such (not routed as `/`).
    @Test func policyTestsSeeTheServersNormalisedPath() throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a/{+rest}", #"{ "handler": { "type": "static", "options": { "body": "hi" } }, "policies": { "inbound": ["p"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "p", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/p)" } } ] }"#,
            "plugins/p.lua": "return function(request) return request end\n",
            "plugins/p_test.lua": """
                local t = require "gatehouse.test"
                return {
                  { name = "collapsed", route = "GET //a//b/", check = function(r) t.equal(r.request.path, "/a/b/") end },
                  { name = "refused", route = "GET /a/..%2Fb", check = function(r) t.equal(r.outcome, "bad-path") end },
                }
                """,
        ])
        defer { fixture.remove() }
        let result = try run(["test", "--config", fixture.configDirectory, "--plugins", fixture.pluginDirectory])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("2 passed, 0 failed"), "\(result.output)")
    }

    @Test func aFailingPolicyTestSaysWhereAndExitsNonZero() throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static", "options": { "body": "hi" } }, "policies": { "inbound": ["p"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "p", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/p)" } } ] }"#,
            "plugins/p.lua": "return function(request) request.headers:set('x-p', 'yes') return request end\n",
            "plugins/p_test.lua": """
                local t = require "gatehouse.test"
                return {
                  { name = "sets x-p", policy = "p", check = function(r) t.equal(r.request.headers["x-p"], "yes") end },
                  { name = "route answers hi", route = "GET /a", check = function(r) t.equal(r.response.body, "hi") end },
                  { name = "a wrong expectation", policy = "p",
                    check = function(r)
                      t.equal(r.request.headers["x-p"], "no")
                    end },
                }
                """,
        ])
        defer { fixture.remove() }
        let result = try run(["test", "--config", fixture.configDirectory, "--plugins", fixture.pluginDirectory])
        #expect(result.status == 1)
        #expect(result.output.contains("✔ plugins/p_test.lua: sets x-p"))
        #expect(result.output.contains("✔ plugins/p_test.lua: route answers hi"))
        #expect(result.output.contains("plugins/p_test.lua:7: expected \"no\", got \"yes\""), "\(result.output)")
        #expect(result.output.contains("2 passed, 1 failed"))
    }

    @Test func pluginsListShowsNameVersionAndHash() throws {
        let result = try run(["plugins", "list"])
        #expect(result.status == 0)
        #expect(result.output.contains("plugins/environment-routing.lua\tenvironment-routing\t1.0.0\tplugins\t"), "\(result.output)")
    }

    /// A real `gatehouse serve` process: with --no-watch an edit waits for SIGHUP.
    @Test func sighupReloadsARunningGateway() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/v", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["v"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "v", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/v)" } } ] }"#,
            "plugins/v.lua": "return function() return Response.text('one') end\n",
        ])
        defer { fixture.remove() }
        let (process, port) = try serve(fixture)
        defer { process.terminate() }
        let url = "http://127.0.0.1:\(port)/v"
        var body = ""
        for _ in 0..<100 {
            if let reply = try? await send(url) { body = reply.body; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(body == "one")
        try fixture.write("plugins/v.lua", "return function() return Response.text('two') end\n")
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await send(url).body == "one", "no watch: the edit waits for a signal")
        kill(process.processIdentifier, SIGHUP)
        for _ in 0..<40 {
            body = try await send(url).body
            if body == "two" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(body == "two")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "SIGTERM is a clean exit")
    }

    /// `gatehouse keys` against a running, watching gateway: create → authenticate → revoke → 401.
    @Test func keyManagementRoundTrip() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/me", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["auth", "whoami"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound" }, { "name": "whoami", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/whoami)" } } ] }"#,
            "config/consumers.json": #"{ "consumers": [] }"#,
            "plugins/whoami.lua": "return function(request) return Response.json({ sub = request.user.sub, plan = request.user.data.plan }) end\n",
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger(), watch: true)
        func me(_ key: String) async throws -> Reply {
            try await send(gateway.baseURL + "/me", headers: [("Authorization", "Bearer \(key)")])
        }
        func eventually(_ key: String, status: Int) async throws -> Reply {
            var reply = try await me(key)
            for _ in 0..<40 where reply.status != status {
                try await Task.sleep(for: .milliseconds(50))
                reply = try await me(key)
            }
            return reply
        }
        let created = try run(["keys", "create", "--consumer", "globex", "--metadata", #"{"plan":"gold"}"#, "--prefix", "sk_live_", "--config", fixture.configDirectory])
        #expect(created.status == 0)
        let key = try #require(created.stdout.split(separator: "\n").first.map(String.init))
        #expect(key.hasPrefix("sk_live_") && key.count == 40)
        let stored = try String(contentsOfFile: fixture.configDirectory + "/consumers.json", encoding: .utf8)
        #expect(!stored.contains(key), "only the digest is stored")
        let ok = try await eventually(key, status: 200)
        #expect(ok.status == 200)
        #expect(ok.json["sub"] as? String == "globex")
        #expect(ok.json["plan"] as? String == "gold")

        let listed = try run(["keys", "list", "--config", fixture.configDirectory])
        #expect(listed.output.contains("globex\tkey_"))
        #expect(!listed.output.contains(key))
        let id = try #require(listed.stdout.split(separator: "\n").dropFirst().first?.split(separator: "\t").dropFirst().first.map(String.init))
        #expect(try run(["keys", "revoke", id, "--config", fixture.configDirectory]).status == 0)
        let revoked = try await eventually(key, status: 401)
        #expect(revoked.status == 401)

        let expired = try run(["keys", "create", "--consumer", "globex", "--expires", "2001-01-01T00:00:00Z", "--config", fixture.configDirectory])
        let old = try #require(expired.stdout.split(separator: "\n").first.map(String.init))
        let refused = try await eventually(old, status: 401)
        for _ in 0..<20 where refused.json["detail"] as? String != "The API key has expired." { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await me(old).json["detail"] as? String == "The API key has expired.")
        try await gateway.stop()
    }

    /// SIGTERM: in-flight requests get the grace period; one still running when it ends is cut,
    /// logged, and the process exits 0.
    @Test func sigtermCutsWhatOutlastsTheGracePeriodAndSaysSo() async throws {
        let upstream = try await RunningUpstream.start(name: "slow")
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/slow", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(SLOW)" } } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": #"{ "shutdownGraceSeconds": 1 }"#,
        ])
        defer { fixture.remove() }
        let errors = Pipe()
        let (process, port) = try serve(fixture, environment: ["SLOW": upstream.url], standardError: errors)
        for _ in 0..<100 where (try? await send("http://127.0.0.1:\(port)/nope")) == nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        let inFlight = Task { try? await send("http://127.0.0.1:\(port)/slow", headers: [("x-echo-delay-ms", "12000")]) }
        while upstream.requestCount == 0 { try await Task.sleep(for: .milliseconds(20)) }
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        _ = await inFlight.value
        #expect(ContinuousClock.now - signalled < .seconds(10), "the 1 s grace period, not the 12 s request, bounds the shutdown")
        #expect(process.terminationStatus == 0)
        #expect(log.contains("request cut short by shutdown"), "\(log)")
        try await upstream.stop()
    }

    /// The hostile policies that once hung the whole gateway until SIGKILL (a looping xpcall
    /// handler, a loop in a resumed coroutine, a backtracking pattern): each is a 500 problem,
    /// every loop keeps serving, and SIGTERM still ends the process promptly.
    @Test func hostilePoliciesNeitherHangTheGatewayNorItsShutdown() async throws {
        let hostile = [
            ("handler-loop", "xpcall(function() error('x') end, function() while true do end end)"),
            ("handler-loop-after-budget", "xpcall(function() while true do end end, function() while true do end end)"),
            ("coroutine-loop", "coroutine.resume(coroutine.create(function() while true do end end))"),
            ("pattern", "string.find(string.rep('a', 300), 'a-a-a-a-b')"),
        ]
        var routes = [("GET", "/ok", #"{ "handler": { "type": "static" } }"#)]
        var policies: [String] = []
        var files: [String: String] = ["config/gatehouse.json": #"{ "shutdownGraceSeconds": 2, "luaTimeBudgetMs": 200 }"#]
        for (name, body) in hostile {
            files["plugins/\(name).lua"] = "return function(request)\n  \(body)\n  return request\nend\n"
            routes.append(("GET", "/\(name)", #"{ "handler": { "type": "static" }, "policies": { "inbound": [""# + name + #""] } }"#))
            policies.append(#"{ "name": ""# + name + #"", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/"# + name + #")" } }"#)
        }
        files["config/routes.oas.json"] = ConfigFixture.routes(routes)
        files["config/policies.json"] = #"{ "policies": ["# + policies.joined(separator: ",") + "] }"
        let fixture = try ConfigFixture(files: files)
        defer { fixture.remove() }
        let (process, port) = try serve(fixture)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        for _ in 0..<100 where (try? await send("http://127.0.0.1:\(port)/ok")) == nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        for (name, _) in hostile {
            // Two at once, so both event loops meet it.
            async let first = send("http://127.0.0.1:\(port)/\(name)")
            async let second = send("http://127.0.0.1:\(port)/\(name)")
            for r in try await [first, second] {
                #expect(r.status == 500, "\(name): \(r.status) \(r.body)")
                #expect(r.json["type"] as? String == "urn:gatehouse:problem:policy-error", "\(name)")
            }
            for _ in 0..<4 {
                let ok = try await send("http://127.0.0.1:\(port)/ok")
                #expect(ok.status == 200, "after \(name)")
            }
        }
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        // A liveness bound, generous for a loaded machine: the grace period is 2 s.
        #expect(ContinuousClock.now - signalled < .seconds(20))
        #expect(process.terminationStatus == 0)
    }

    @Test func routesExplainSaysWhichRouteWins() throws {
        let result = try run(["routes", "--config", "config", "--explain", "GET /v1/customers/42"])
        #expect(result.status == 0)
        #expect(result.output.contains("→ GET /v1/{+path}"))
    }
}
