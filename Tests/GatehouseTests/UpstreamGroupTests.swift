import AsyncHTTPClient
import Foundation
import GatehouseTesting
import GatehouseUpstreams
import Testing

/// Upstream groups through real sockets: seed 004's table, breakers that fail fast, half-open
/// probes, failover between tiers with active checks, balancing, retries on another target and
/// reloads under load, against real upstreams on loopback that fail on purpose.
@Suite struct UpstreamGroupTests {
    /// A gateway over `files` (paths under the fixture root; `$env(NAME)` sees `environment`).
    func withGateway(_ files: [String: String], environment: [String: String], _ body: (TestGateway, ConfigFixture) async throws -> Void) async throws {
        let fixture = try ConfigFixture(files: files)
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], environment: environment, logger: LogCapture().logger())
        do {
            try await body(gateway, fixture)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    func upstreams(_ names: String...) async throws -> [RunningUpstream] {
        var out: [RunningUpstream] = []
        for name in names { out.append(try await RunningUpstream.start(name: name)) }
        return out
    }

    func stop(_ upstreams: [RunningUpstream]) async {
        for u in upstreams { try? await u.stop() }
    }

    /// Waits (bounded) until `condition` holds: for state that changes in the background.
    func eventually(_ what: String, within seconds: Double = 15, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for: \(what)")
    }

    func group(_ gateway: TestGateway, _ name: String) -> UpstreamGroup {
        gateway.server.store.served.groups[name]!
    }

    // MARK: Seed 004

    @Test func upstreamsJSONAloneRoutesEverySeed004Shape() async throws {
        let ups = try await upstreams("api", "legacy")
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "api", "baseUrl": "$env(API)", "routes": [
              { "name": "users", "pathPrefix": "/api/http/user/" },
              { "name": "global", "routeByPath": {
                  "v2/users": { "pathPrefix": "/api/http/users/", "preserveMatchedPath": true },
                  "v2/orders": { "pathPrefix": "/api/http/orders/" },
                  "v3": { "pathPrefix": "/api/http/", "transformPath": { "replace": ["/v3/", "/three/"] } },
                  "": { "pathPrefix": "/api/http/global/" } } } ] } ],
          "cores": [ { "name": "old", "url": "$env(LEGACY)/api/http/old/", "pathPrefix": "/old" } ] }
        """#]
        try await withGateway(files, environment: ["API": ups[0].url, "LEGACY": ups[1].url]) { gateway, _ in
            let rows: [(String, String, String)] = [
                ("/users", "api", "/api/http/user/"),
                ("/users/123", "api", "/api/http/user/123"),
                ("/users/123/orders", "api", "/api/http/user/123/orders"),
                ("/global/v2/users/123", "api", "/api/http/users/v2/users/123"),
                ("/global/v2/orders/9", "api", "/api/http/orders/9"),
                ("/global/v3/x", "api", "/api/http/three/x"),
                ("/global/anything/else", "api", "/api/http/global/anything/else"),
                ("/old/7", "legacy", "/api/http/old/7"),
                // Query strings go on byte for byte (order, encoding, empty values).
                ("/users?page=1&limit=10", "api", "/api/http/user/?page=1&limit=10"),
                ("/users/1?b=2&a=%2F+x&flag&empty=", "api", "/api/http/user/1?b=2&a=%2F+x&flag&empty="),
            ]
            for (request, upstream, path) in rows {
                let r = try await send(gateway.baseURL + request)
                #expect(r.status == 200, "\(request)")
                #expect(r.json["upstream"] as? String == upstream, "\(request)")
                #expect(r.json["path"] as? String == path, "\(request) → \(r.json["path"] ?? "nil")")
            }
            let post = try await send(gateway.baseURL + "/users", method: .POST, headers: [("x-custom", "kept"), ("content-type", "application/json")], body: "{}")
            #expect(post.json["method"] as? String == "POST")
            #expect(post.json["path"] as? String == "/api/http/user/")
            let headers = post.upstreamHeaders
            #expect(headers["x-custom"] == "kept", "end-to-end headers are forwarded")
            #expect(headers["host"] == ups[0].url.dropFirst("http://".count).description, "Host is the backend's")
            #expect(headers["x-forwarded-for"] == "127.0.0.1")
            #expect(headers["x-forwarded-proto"] == "http")
            #expect(headers["x-forwarded-host"]?.hasPrefix("127.0.0.1:") == true)

            let missing = try await send(gateway.baseURL + "/nothing/here")
            #expect(missing.status == 404)
            #expect(missing.json["type"] as? String == "urn:gatehouse:problem:route-not-found")
        }
        await stop(ups)
    }

    @Test func aLuaTransformPathRewritesThePathAndItsFailuresAreProblems() async throws {
        let ups = try await upstreams("api")
        let files = [
            "config/upstreams.json": #"""
            { "coreGroups": [ { "coreName": "api", "baseUrl": "$env(API)", "routes": [ { "name": "global", "routeByPath": {
                "v2": { "pathPrefix": "/api/", "transformPath": { "module": "$import(./plugins/paths)", "export": "dropVersion" } },
                "broken": { "pathPrefix": "/api/", "transformPath": { "module": "$import(./plugins/paths)", "export": "broken" } },
                "number": { "pathPrefix": "/api/", "transformPath": { "module": "$import(./plugins/paths)", "export": "notAPath" } } } } ] } ] }
            """#,
            "plugins/paths.lua": """
            return {
              dropVersion = function(path) return (path:gsub("^/v%d+", "")) end,
              broken = function(path) error("no rule for " .. path) end,
              notAPath = function(path) return "/a b" end,
            }
            """,
        ]
        try await withGateway(files, environment: ["API": ups[0].url]) { gateway, _ in
            let r = try await send(gateway.baseURL + "/global/v2/users/7?x=1")
            #expect(r.status == 200)
            #expect(r.json["path"] as? String == "/api/users/7?x=1")
            for path in ["/global/broken/1", "/global/number/1"] {
                let failed = try await send(gateway.baseURL + path)
                #expect(failed.status == 500, "\(path)")
                #expect(failed.json["type"] as? String == "urn:gatehouse:problem:policy-error")
                #expect(failed.json["requestId"] as? String != nil)
            }
            #expect(ups[0].echo.requestCount == 1, "a failed transform sends nothing")
        }
        await stop(ups)
    }

    // MARK: Breakers

    @Test func anOpenBreakerFailsFastWithoutConnecting() async throws {
        let dead = try BadUpstream(.closeWithoutAnswer)
        defer { dead.stop() }
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "payments", "baseUrl": "$env(DEAD)", "circuitBreaker": { "threshold": 3, "timeout": 60000, "halfOpenMax": 1 },
            "routes": [ { "name": "pay", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["DEAD": dead.url]) { gateway, _ in
            // POST is not retried: one connection per request.
            for _ in 0..<3 {
                let r = try await send(gateway.baseURL + "/pay/charge", method: .POST, body: "{}")
                #expect(r.status == 502)
            }
            #expect(dead.connections == 3)
            #expect(group(gateway, "payments").report()[0].state.breaker == .open)
            for _ in 0..<5 {
                let r = try await send(gateway.baseURL + "/pay/charge", method: .POST, body: "{}")
                #expect(r.status == 503)
                #expect(r.headers["content-type"].first == "application/problem+json")
                #expect((r.json["detail"] as? String)?.contains("'payments'") == true, "names the group")
                #expect(!r.body.contains("127.0.0.1"), "never an address")
                let retryAfter = Int(r.headers["retry-after"].first ?? "") ?? 0
                #expect(retryAfter >= 1 && retryAfter <= 60)
            }
            #expect(dead.connections == 3, "no connection is attempted while the breaker is open")
        }
    }

    @Test func halfOpenSendsExactlyHalfOpenMaxConcurrentProbesThenCloses() async throws {
        let ups = try await upstreams("flaky")
        let echo = ups[0].echo
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "flaky", "baseUrl": "$env(FLAKY)", "circuitBreaker": { "threshold": 2, "timeout": 2000, "halfOpenMax": 2 },
            "routes": [ { "name": "f", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["FLAKY": ups[0].url]) { gateway, _ in
            echo.force(status: 503)
            for _ in 0..<2 { #expect(try await send(gateway.baseURL + "/f/x").status == 503) }
            #expect(group(gateway, "flaky").report()[0].state.breaker == .open)
            echo.force(status: nil)
            // Probes are held at the upstream, so every request below arrives while they are
            // in flight.
            echo.closeGate()
            try await eventually("the breaker to become half-open") { group(gateway, "flaky").report()[0].state.breaker == .halfOpen }
            let before = echo.requestCount
            let probes = Task {
                try await withThrowingTaskGroup(of: Int.self) { tasks in
                    for _ in 0..<2 { tasks.addTask { try await send(gateway.baseURL + "/f/x", client: wideClient).status } }
                    return try await tasks.reduce(into: [Int]()) { $0.append($1) }
                }
            }
            try await eventually("two probes at the upstream") { echo.inFlightNow == 2 }
            for _ in 0..<6 {
                let r = try await send(gateway.baseURL + "/f/x", client: wideClient)
                #expect(r.status == 503 && r.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable", "no third probe")
            }
            #expect(echo.requestCount - before == 2, "exactly halfOpenMax probes reached the upstream")
            echo.openGate()
            #expect(try await probes.value == [200, 200])
            #expect(group(gateway, "flaky").report()[0].state.breaker == .closed, "a probe's success closed it")
            #expect(try await send(gateway.baseURL + "/f/x").status == 200)
        }
        await stop(ups)
    }

    @Test func aStreamedBodyThatBreaksOffCountsAgainstTheTarget() async throws {
        let broken = try BadUpstream(.truncatedLargeBody)
        defer { broken.stop() }
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "files", "baseUrl": "$env(BROKEN)", "circuitBreaker": { "threshold": 2, "timeout": 60000 },
            "routes": [ { "name": "files", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["BROKEN": broken.url]) { gateway, _ in
            for _ in 0..<2 {
                // The head (200) went out; the body breaks off: the client sees a cut answer.
                _ = try? await send(gateway.baseURL + "/files/big")
            }
            try await eventually("the breaker to open") { group(gateway, "files").report()[0].state.breaker == .open }
            #expect(group(gateway, "files").report()[0].state.outstanding == 0)
            let r = try await send(gateway.baseURL + "/files/big")
            #expect(r.status == 503)
        }
    }

    @Test func aFailedProbeReopensTheBreaker() async throws {
        let ups = try await upstreams("down")
        let echo = ups[0].echo
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "down", "baseUrl": "$env(DOWN)", "circuitBreaker": { "threshold": 1, "timeout": 1000, "maxTimeout": 60000, "halfOpenMax": 1 },
            "routes": [ { "name": "d", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["DOWN": ups[0].url]) { gateway, _ in
            echo.force(status: 503)
            #expect(try await send(gateway.baseURL + "/d").status == 503)
            try await eventually("half-open") { group(gateway, "down").report()[0].state.breaker == .halfOpen }
            let before = echo.requestCount
            #expect(try await send(gateway.baseURL + "/d").status == 503) // the probe: the upstream's 503
            // Opened again, now for 2 s (backoff): the checks below come well within that.
            #expect(echo.requestCount == before + 1)
            #expect(group(gateway, "down").report()[0].state.breaker == .open)
            let fast = try await send(gateway.baseURL + "/d")
            #expect(fast.status == 503 && fast.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable")
            #expect(echo.requestCount == before + 1, "open again: not sent")
        }
        await stop(ups)
    }

    // MARK: Failover and balancing

    @Test func failsOverToTier2AndBackWhenTier1RecoversByActiveCheck() async throws {
        let ups = try await upstreams("primary", "secondary")
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "db-api", "circuitBreaker": false,
            "targets": [ { "url": "$env(PRIMARY)", "priority": 1 }, { "url": "$env(SECONDARY)", "priority": 2 } ],
            "healthCheck": { "active": { "path": "/health", "intervalMs": 50, "timeoutMs": 1000, "healthyThreshold": 2, "unhealthyThreshold": 2 } },
            "routes": [ { "name": "db", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["PRIMARY": ups[0].url, "SECONDARY": ups[1].url]) { gateway, _ in
            #expect(try await send(gateway.baseURL + "/db/x").json["upstream"] as? String == "primary")
            ups[0].echo.force(status: 503)
            try await eventually("failover to the secondary") { try await send(gateway.baseURL + "/db/x").json["upstream"] as? String == "secondary" }
            #expect(group(gateway, "db-api").report()[0].state.healthy == false)
            ups[0].echo.force(status: nil)
            try await eventually("back to the primary") { try await send(gateway.baseURL + "/db/x").json["upstream"] as? String == "primary" }
        }
        await stop(ups)
    }

    @Test func weightedRoundRobinThroughTheGateway() async throws {
        let ups = try await upstreams("heavy", "light")
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "w", "targets": [ { "url": "$env(HEAVY)", "weight": 3 }, { "url": "$env(LIGHT)", "weight": 1 } ],
            "routes": [ { "name": "w", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["HEAVY": ups[0].url, "LIGHT": ups[1].url]) { gateway, _ in
            let answers = try await RawHTTP.sendOnOneConnection(port: gateway.port, Array(repeating: "GET /w/x HTTP/1.1\r\nHost: x\r\n\r\n", count: 2_000), timeoutSeconds: 60)
            #expect(answers.allSatisfy { $0.status == 200 })
            let heavy = ups[0].echo.requestCount, light = ups[1].echo.requestCount
            #expect(heavy + light == 2_000)
            // 3:1 within 5% (the balancer's own test makes 10,000 choices; 10,000 requests through
            // sockets would add ~15 s to the suite).
            #expect(abs(heavy - 1_500) <= 75, "heavy \(heavy), light \(light)")
        }
        await stop(ups)
    }

    @Test func consistentHashingKeepsATenantOnOneTarget() async throws {
        let ups = try await upstreams("s1", "s2", "s3")
        let targets = #"[ { "url": "$env(S1)" }, { "url": "$env(S2)" }, { "url": "$env(S3)" } ]"#
        let files = [
            "config/upstreams.json": #"{ "groups": [ { "name": "by-header", "loadBalancing": { "type": "consistent-hash", "key": "header:x-tenant" }, "targets": "# + targets
                + #" }, { "name": "by-policy", "loadBalancing": { "type": "consistent-hash", "key": "custom:tenant" }, "targets": "# + targets + " } ] }",
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/h/{+rest}", #"{ "handler": { "type": "upstream-group", "options": { "group": "by-header" } } }"#),
                ("GET", "/p/{+rest}", #"{ "handler": { "type": "upstream-group", "options": { "group": "by-policy" } }, "policies": { "inbound": ["tenant"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": [ { "name": "tenant", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/tenant)" } } ] }"#,
            "plugins/tenant.lua": """
            return function(request, context)
              context.custom.tenant = request.query.t
              return request
            end
            """,
        ]
        try await withGateway(files, environment: ["S1": ups[0].url, "S2": ups[1].url, "S3": ups[2].url]) { gateway, _ in
            var homes: Set<String> = []
            for tenant in (0..<12).map({ "tenant-\($0)" }) {
                var seen: Set<String> = []
                for _ in 0..<4 {
                    seen.insert(try await send(gateway.baseURL + "/h/x", headers: [("x-tenant", tenant)]).json["upstream"] as? String ?? "-")
                }
                #expect(seen.count == 1, "\(tenant) stays on one target: \(seen)")
                homes.formUnion(seen)
                var byPolicy: Set<String> = []
                for _ in 0..<4 { byPolicy.insert(try await send(gateway.baseURL + "/p/x?t=\(tenant)").json["upstream"] as? String ?? "-") }
                #expect(byPolicy == seen, "the same key through a policy's context.custom lands on the same target")
            }
            #expect(homes.count >= 2, "tenants spread over the targets: \(homes)")
        }
        await stop(ups)
    }

    @Test func anIdempotentRequestIsRetriedOnAnotherTarget() async throws {
        let ups = try await upstreams("alive")
        let dead = try BadUpstream(.closeWithoutAnswer)
        defer { dead.stop() }
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [ { "coreName": "r", "circuitBreaker": { "threshold": 1000 }, "targets": [ { "url": "$env(DEAD)" }, { "url": "$env(ALIVE)" } ],
            "routes": [ { "name": "r", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["DEAD": dead.url, "ALIVE": ups[0].url]) { gateway, _ in
            for _ in 0..<10 {
                let r = try await send(gateway.baseURL + "/r/x")
                #expect(r.status == 200)
                #expect(r.json["upstream"] as? String == "alive")
            }
            #expect(dead.connections >= 1, "round robin did try the dead target")
            // Not idempotent: the failure is the answer.
            var failed = 0
            for _ in 0..<4 {
                if try await send(gateway.baseURL + "/r/x", method: .POST, body: "{}").status == 502 { failed += 1 }
            }
            #expect(failed == 2, "round robin sends every other POST to the dead target")
        }
        await stop(ups)
    }

    @Test func retryOnSendsAnIdempotentRequestAnswered503ToAnotherTarget() async throws {
        let ups = try await upstreams("sick", "well")
        ups[0].echo.force(status: 503)
        let files = ["config/upstreams.json": #"""
        { "coreGroups": [
            { "coreName": "retrying", "retryOn": [503], "circuitBreaker": false, "targets": [ { "url": "$env(SICK)", "weight": 2 }, { "url": "$env(WELL)" } ],
              "routes": [ { "name": "r", "pathPrefix": "/" } ] },
            { "coreName": "plain", "circuitBreaker": false, "targets": [ { "url": "$env(SICK)", "weight": 2 }, { "url": "$env(WELL)" } ],
              "routes": [ { "name": "p", "pathPrefix": "/" } ] } ] }
        """#]
        try await withGateway(files, environment: ["SICK": ups[0].url, "WELL": ups[1].url]) { gateway, _ in
            for _ in 0..<6 {
                let r = try await send(gateway.baseURL + "/r/x")
                #expect(r.status == 200)
                #expect(r.json["upstream"] as? String == "well")
            }
            #expect(ups[0].echo.requestCount >= 3, "the sick target was tried first")
            // Not idempotent: the 503 stands.
            var statuses: [Int] = []
            for _ in 0..<3 { statuses.append(try await send(gateway.baseURL + "/r/x", method: .POST, body: "{}").status) }
            #expect(statuses.contains(503))
            // Without retryOn the answer is passed on as it is.
            var plain: [Int] = []
            for _ in 0..<3 { plain.append(try await send(gateway.baseURL + "/p/x").status) }
            #expect(plain.filter { $0 == 503 }.count == 2, "\(plain)")
        }
        await stop(ups)
    }

    @Test func aReloadUnderLoadChangesTargetsWithoutAFailedRequest() async throws {
        let ups = try await upstreams("blue", "green")
        func config(_ urls: [String]) -> String {
            #"{ "coreGroups": [ { "coreName": "app", "targets": ["# + urls.map { #"{ "url": "\#($0)" }"# }.joined(separator: ",")
                + #"], "routes": [ { "name": "app", "pathPrefix": "/" } ] } ] }"#
        }
        try await withGateway(["config/upstreams.json": config([ups[0].url])], environment: [:]) { gateway, fixture in
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { tasks in
                for _ in 0..<4 {
                    tasks.addTask {
                        var seen: [Int] = []
                        for _ in 0..<60 { seen.append(try await send(gateway.baseURL + "/app/x", client: wideClient).status) }
                        return seen
                    }
                }
                tasks.addTask {
                    for urls in [[ups[0].url, ups[1].url], [ups[1].url], [ups[0].url], [ups[1].url]] {
                        try fixture.write("config/upstreams.json", config(urls))
                        guard case .success = await gateway.reloader.reload(reason: "test") else { Issue.record("reload failed"); return [] }
                        try await Task.sleep(for: .milliseconds(30))
                    }
                    return []
                }
                return try await tasks.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == 240)
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses.filter { $0 != 200 })")
            #expect(try await send(gateway.baseURL + "/app/x").json["upstream"] as? String == "green")
        }
        await stop(ups)
    }

    // MARK: From routes.oas.json, with policies

    @Test func theUpstreamGroupHandlerRunsPoliciesAndAPolicyCanChooseTheGroup() async throws {
        let ups = try await upstreams("alpha", "beta")
        let files = [
            "config/upstreams.json": #"{ "groups": [ { "name": "alpha", "targets": [ { "url": "$env(ALPHA)" } ] }, { "name": "beta", "targets": [ { "url": "$env(BETA)/base" } ] } ] }"#,
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/v1/{+rest}", #"{ "handler": { "type": "upstream-group", "options": { "group": "alpha" } }, "policies": { "inbound": ["pick"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": [ { "name": "pick", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/pick)" } } ] }"#,
            "plugins/pick.lua": """
            return function(request, context)
              if request.headers:get("x-tier") == "beta" then context.custom.upstream = "beta" end
              request.headers:set("x-picked", "yes")
              return request
            end
            """,
        ]
        try await withGateway(files, environment: ["ALPHA": ups[0].url, "BETA": ups[1].url]) { gateway, _ in
            let a = try await send(gateway.baseURL + "/v1/items/1?q=1")
            #expect(a.json["upstream"] as? String == "alpha")
            #expect(a.json["path"] as? String == "/v1/items/1?q=1")
            #expect(a.upstreamHeaders["x-picked"] == "yes")
            let b = try await send(gateway.baseURL + "/v1/items/1", headers: [("x-tier", "beta")])
            #expect(b.json["upstream"] as? String == "beta")
            #expect(b.json["path"] as? String == "/base/v1/items/1", "the target's base path, joined once")
        }
        await stop(ups)
    }

    // MARK: Scripts and the admin endpoint

    @Test func scriptsReadGroupStateAndFetchThroughAGroupWithFailover() async throws {
        let ups = try await upstreams("users")
        let dead = try BadUpstream(.closeWithoutAnswer)
        defer { dead.stop() }
        let files = [
            "config/upstreams.json": #"{ "groups": [ { "name": "users", "circuitBreaker": { "threshold": 1, "timeout": 60000 }, "targets": [ { "url": "$env(DEAD)", "weight": 2 }, { "url": "$env(USERS)" } ] } ] }"#,
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/fetch", #"{ "handler": { "type": "lua", "module": "$import(./plugins/fetcher)" } }"#),
                ("GET", "/state", #"{ "handler": { "type": "lua", "module": "$import(./plugins/state)" } }"#),
                ("GET", "/unknown", #"{ "handler": { "type": "lua", "module": "$import(./plugins/unknown)" } }"#),
            ]),
            "config/policies.json": #"{ "policies": [] }"#,
            "plugins/fetcher.lua": """
            return function(request, context)
              local res, err = http.fetch("/from/lua?x=1", { upstream = "users" })
              if res == nil then return Response.json({ error = err }, { status = 502 }) end
              return res
            end
            """,
            "plugins/state.lua": """
            return function() return Response.json({ names = upstreams.names(), users = upstreams.get("users"), none = upstreams.get("none") == nil }) end
            """,
            "plugins/unknown.lua": """
            return function()
              local res, err = http.fetch("/x", { upstream = "nope" })
              return Response.json({ error = err })
            end
            """,
        ]
        let fixture = try ConfigFixture(files: files)
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            environment: ["DEAD": dead.url, "USERS": ups[0].url], logger: LogCapture().logger(), admin: true)
        do {
            // Smooth round robin tries the heavier, dead target first; the idempotent fetch is
            // retried on the other.
            let fetched = try await send(gateway.baseURL + "/fetch")
            #expect(fetched.status == 200)
            #expect(fetched.json["upstream"] as? String == "users")
            #expect(fetched.json["path"] as? String == "/from/lua?x=1")
            #expect(dead.connections == 1)

            let state = try await send(gateway.baseURL + "/state").json
            #expect(state["names"] as? [String] == ["users"])
            #expect(state["none"] as? Bool == true)
            let users = try #require(state["users"] as? [String: Any])
            #expect(users["available"] as? Bool == true)
            let targets = try #require(users["targets"] as? [[String: Any]])
            #expect(targets.map { $0["breaker"] as? String } == ["open", "closed"])
            #expect(targets.map { $0["available"] as? Bool } == [false, true])
            #expect(targets.map { $0["weight"] as? Int } == [2, 1])

            let unknown = try await send(gateway.baseURL + "/unknown").json
            #expect((unknown["error"] as? String)?.contains("no upstream group 'nope'") == true)

            let admin = try await send("http://127.0.0.1:\(try #require(gateway.adminPort))/upstreams")
            #expect(admin.status == 200)
            let groups = try #require((try? JSONSerialization.jsonObject(with: Data(admin.body.utf8))) as? [[String: Any]])
            #expect(groups.first?["name"] as? String == "users")
            #expect((groups.first?["targets"] as? [[String: Any]])?.first?["breaker"] as? String == "open")
        } catch {
            try await gateway.stop()
            await stop(ups)
            throw error
        }
        try await gateway.stop()
        await stop(ups)
    }
}
