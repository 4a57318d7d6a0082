import Foundation
import GatehouseTesting
import Testing

/// Each example's README flow, live.
@Suite struct ExampleTests {
    @Test func environmentRoutingExampleFlow() async throws {
        let root = ConfigFixture.repositoryRoot()
        let example = root + "/examples/environment-routing"
        let sandbox = try await RunningUpstream.start(name: "sandbox")
        let production = try await RunningUpstream.start(name: "production")
        let gateway = try await TestGateway.start(
            configDirectory: example + "/config", pluginDirectories: [example + "/plugins", root + "/plugins"],
            environment: ["SANDBOX_URL": sandbox.url, "PRODUCTION_URL": production.url], logger: LogCapture().logger())
        func call(_ key: String?) async throws -> Reply {
            try await send(gateway.baseURL + "/v1/charges", headers: key.map { [("Authorization", "Bearer \($0)")] } ?? [])
        }
        let test = try await call("sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc")
        #expect(test.json["upstream"] as? String == "sandbox")
        #expect(test.json["path"] as? String == "/charges")
        let live = try await call("sk_live_demo_9xK2mQ7vLp3RtY8wZ5nB1cHd")
        #expect(live.json["upstream"] as? String == "production")
        let misfiled = try await call("sk_test_demo_misfiled_Zx8Cv6Bn4Mm2")
        #expect(misfiled.status == 403)
        #expect(misfiled.json["detail"] as? String == "A sk_test_… key cannot be used against the production environment.")
        let anonymous = try await call(nil)
        #expect(anonymous.status == 401)
        #expect(sandbox.requestCount == 1)
        #expect(production.requestCount == 1)
        try await gateway.stop()
        try await sandbox.stop()
        try await production.stop()
    }

    /// `examples/tenant-rate-limits`: two gateways, one (private, fresh) Redis; the free tier's
    /// burst and an organisation's export bucket hold across both.
    @Test(.enabled(if: RedisServer.available, Comment(rawValue: RedisServer.skipReason)))
    func tenantRateLimitsExampleFlow() async throws {
        let redis = try RedisServer.start()
        let root = ConfigFixture.repositoryRoot() + "/examples/tenant-rate-limits"
        // The example's configuration as shipped, but for a command timeout that a loaded test
        // machine cannot exceed (a timed-out count would fall back to per-instance limits).
        var files: [String: String] = [:]
        for name in ["routes.oas.json", "policies.json", "consumers.json"] {
            files["config/" + name] = try String(contentsOfFile: root + "/config/" + name, encoding: .utf8)
        }
        let shipped = try String(contentsOfFile: root + "/config/gatehouse.json", encoding: .utf8)
        files["config/gatehouse.json"] = shipped.replacingOccurrences(of: #""commandTimeoutMs": 250"#, with: #""commandTimeoutMs": 5000"#)
        #expect(files["config/gatehouse.json"] != shipped)
        let fixture = try ConfigFixture(files: files)
        defer { fixture.remove() }
        func start() async throws -> TestGateway {
            try await TestGateway.start(
                configDirectory: fixture.configDirectory, pluginDirectories: [root + "/plugins"], environment: ["REDIS_URL": redis.url],
                logger: LogCapture().logger())
        }
        let one = try await start()
        let two = try await start()
        do {
            // 20 at once, alternating gateways: they arrive well within the 6 s a whole burst
            // takes to refill, however loaded the machine.
            let started = ContinuousClock.now
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for i in 0..<20 {
                    let gateway = i % 2 == 0 ? one : two
                    group.addTask { try await self.call(gateway, "/api/reports", key: "sk_free_demo_ad95d5fa651b") }
                }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            let statuses = replies.map(\.status)
            let refused = replies.first { $0.status == 429 }
            let refills = Int((ContinuousClock.now - started) / .milliseconds(600))
            let passed = statuses.filter { $0 == 200 }.count
            #expect(passed >= 10 && passed <= 10 + refills, "\(statuses)")
            // 20 requests within 6 s (a whole refill of the burst) meet a refusal.
            let refusal = try #require(refused, "\(statuses)")
            #expect((refusal.json["detail"] as? String)?.contains("'free' tier") == true)
            #expect(refusal.headers["ratelimit-policy"].first == "100;w=60;burst=10")
            // Both bigcorp keys draw on one export bucket of 5 (one refill per 2 s).
            let exportsStarted = ContinuousClock.now
            var exports: [Int] = []
            for i in 0..<8 {
                let key = i % 2 == 0 ? "sk_enterprise_demo_9b97ac5e767e" : "sk_enterprise_demo_dash_51c0e2"
                exports.append(try await send((i % 2 == 0 ? one : two).baseURL + "/api/exports", method: .POST, headers: [("Authorization", "Bearer \(key)")]).status)
            }
            let exportRefills = Int((ContinuousClock.now - exportsStarted) / .seconds(2))
            let queued = exports.filter { $0 == 202 }.count
            #expect(queued >= 5 && queued <= 5 + exportRefills, "\(exports)")
            #expect(exports.allSatisfy { $0 == 202 || $0 == 429 })
            // The pro tier is its own tenant: unaffected.
            #expect(try await call(two, "/api/reports", key: "sk_pro_demo_07ed400759a0").status == 200)
        } catch {
            try await one.stop()
            try await two.stop()
            throw error
        }
        try await one.stop()
        try await two.stop()
    }

    /// Starts an example with its demo upstreams (names as in its demo.json, ports ephemeral),
    /// its data service if it has one, and the environment pointing at them.
    /// `plugins` overrides the example's own plugin directory (relative to `examples/`).
    func withExample(
        _ name: String, plugins: String? = nil, upstreams: [(name: String, variable: String)], dataVariable: String? = nil,
        _ body: (TestGateway, [String: RunningUpstream], RunningDataService?) async throws -> Void
    ) async throws {
        let root = ConfigFixture.repositoryRoot() + "/examples/" + name
        let pluginDirectory = plugins.map { ConfigFixture.repositoryRoot() + "/examples/" + $0 } ?? root + "/plugins"
        var environment: [String: String] = [:]
        var running: [String: RunningUpstream] = [:]
        for upstream in upstreams {
            let u = try await RunningUpstream.start(name: upstream.name)
            running[upstream.name] = u
            environment[upstream.variable] = u.url
        }
        var data: RunningDataService?
        if let dataVariable {
            // The data service substitutes $env(...) in its records: give it the final URLs.
            let service = try await RunningDataService.start(directory: root + "/config/demo-data", environment: environment)
            environment[dataVariable] = service.url
            data = service
        }
        let gateway = try await TestGateway.start(
            configDirectory: root + "/config", pluginDirectories: [pluginDirectory], environment: environment, logger: LogCapture().logger())
        do {
            try await body(gateway, running, data)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
        for u in running.values { try await u.stop() }
        try await data?.stop()
    }

    func call(_ gateway: TestGateway, _ path: String, key: String) async throws -> Reply {
        try await send(gateway.baseURL + path, headers: [("Authorization", "Bearer \(key)")])
    }

    static let acme = "sk_acme_7Hq2Lw9Xp4Rt", wayne = "sk_wayne_3Vb8Nm1Kc6Zd", stark = "sk_stark_5Tg0Yj2Ue8Fs"
    static let umbrella = "sk_umbrella_9Pl4Qa7Ws1Ed", anonymous = "sk_anon_2Rf6Tg8Yh0Uj"

    /// `examples/proxy-routing/<variant>`: upstreams.json alone, its demo backends started here.
    func withProxyRoutingExample(
        _ variant: String, upstreams: [(name: String, variable: String)], _ body: (TestGateway, [String: RunningUpstream]) async throws -> Void
    ) async throws {
        try await withExample("proxy-routing/" + variant, plugins: "proxy-routing/plugins", upstreams: upstreams) { gateway, running, _ in
            try await body(gateway, running)
        }
    }

    /// "upstream path" as the echo backend saw it ("error ..." when the request failed).
    func routed(_ gateway: TestGateway, _ path: String) async -> String {
        do { return try await routedTo(gateway, path) } catch { return "error \(error)" }
    }

    func routedTo(_ gateway: TestGateway, _ path: String) async throws -> String {
        let r = try await send(gateway.baseURL + path)
        return "\(r.json["upstream"] as? String ?? "-") \(r.json["path"] as? String ?? "-")"
    }

    @Test func proxyRoutingVersionBased() async throws {
        try await withProxyRoutingExample("version-based", upstreams: [("api-v1", "API_V1_URL"), ("api-v2", "API_V2_URL")]) { gateway, _ in
            #expect(await routed(gateway, "/v1/users/42?expand=orders") == "api-v1 /api/http/users/42?expand=orders")
            #expect(await routed(gateway, "/v2/users/admin/7") == "api-v2 /api/http/admin/7")
            #expect(await routed(gateway, "/v2/users/7") == "api-v2 /api/http/users/7")
            #expect(await routed(gateway, "/v2/legacy/orders/9") == "api-v2 /api/http/orders/9")
            #expect(await routed(gateway, "/v2/other") == "api-v2 /api/http/other")
            let unknown = try await send(gateway.baseURL + "/v3/anything")
            #expect(unknown.status == 404)
        }
    }

    @Test func proxyRoutingServiceBasedFailsOverToTheStandby() async throws {
        let upstreams = [("users-svc", "USERS_URL"), ("orders-svc", "ORDERS_URL"), ("products-svc", "PRODUCTS_URL"), ("users-standby", "USERS_STANDBY_URL")]
        try await withProxyRoutingExample("service-based", upstreams: upstreams) { gateway, running in
            #expect(await routed(gateway, "/users/1") == "users-svc /api/http/1")
            #expect(await routed(gateway, "/orders/1") == "orders-svc /api/http/1")
            #expect(await routed(gateway, "/products") == "products-svc /api/http/")
            // The primary's health check fails twice (1 s apart), and the requests it fails
            // meanwhile open its breaker: traffic moves to tier 2. It comes back once the check
            // passes twice and the breaker (5 s) lets a probe through.
            running["users-svc"]!.echo.force(status: 503)
            var upstream: String?
            for _ in 0..<200 where upstream != "users-standby" {
                upstream = try await routedTo(gateway, "/users/1").split(separator: " ").first.map(String.init)
                if upstream != "users-standby" { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(upstream == "users-standby")
            running["users-svc"]!.echo.force(status: nil)
            for _ in 0..<300 where upstream != "users-svc" {
                upstream = try await routedTo(gateway, "/users/1").split(separator: " ").first.map(String.init)
                if upstream != "users-svc" { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(upstream == "users-svc")
        }
    }

    @Test func proxyRoutingModuleBased() async throws {
        try await withProxyRoutingExample("module-based", upstreams: [("serverless-sst", "SST_URL"), ("billing", "BILLING_URL")]) { gateway, _ in
            #expect(await routed(gateway, "/users/1") == "serverless-sst /api/http/user/1")
            #expect(await routed(gateway, "/orders/1") == "serverless-sst /api/http/order/1")
            #expect(await routed(gateway, "/documents/a/b") == "serverless-sst /api/http/documents/a/b")
            #expect(await routed(gateway, "/scheduling") == "serverless-sst /api/http/scheduling/")
            #expect(await routed(gateway, "/billing/invoices/3") == "billing /api/http/billing/invoices/3")
        }
    }

    @Test func smartRoutingExampleFlow() async throws {
        try await withExample("smart-routing", upstreams: [("us-east", "US_EAST_URL"), ("eu-west", "EU_WEST_URL")], dataVariable: "ROUTING_SERVICE_URL") { gateway, up, data in
            let acme = try await call(gateway, "/api/orders/7?expand=items", key: Self.acme)
            #expect(acme.json["upstream"] as? String == "us-east")
            #expect(acme.json["path"] as? String == "/orders/7?expand=items")
            #expect(acme.upstreamHeaders["x-customer-id"] == "acme")
            let wayne = try await call(gateway, "/api/orders/7", key: Self.wayne)
            #expect(wayne.status == 200)
            #expect(wayne.json["upstream"] as? String == "eu-west")
            #expect(wayne.json["path"] as? String == "/orders/7")
            #expect(wayne.upstreamHeaders["x-customer-id"] == "wayne")
            let stark = try await call(gateway, "/api/orders/7", key: Self.stark)
            #expect(stark.status == 404)
            #expect(stark.json["detail"] as? String == "No routing information for customer 'stark'.")
            #expect(try await call(gateway, "/api/orders/7", key: Self.anonymous).status == 401)
            // Cached: repeating calls does not ask the routing service again.
            let before = data!.requestCount
            for _ in 0..<3 { _ = try await call(gateway, "/api/orders/8", key: Self.acme) }
            #expect(data!.requestCount == before)
            #expect(up["us-east"]!.requestCount == 5, "acme 4 times, and wayne's primary (503) once")
        }
    }

    @Test func customerRoutingExampleFlow() async throws {
        try await withExample("customer-routing", upstreams: [("acme-dedicated", "ACME_BACKEND_URL"), ("wayne-dedicated", "WAYNE_BACKEND_URL")]) { gateway, _, _ in
            let acme = try await call(gateway, "/api/invoices", key: Self.acme)
            #expect(acme.json["upstream"] as? String == "acme-dedicated")
            #expect(acme.upstreamHeaders["x-customer-environment"] == "acme")
            #expect(try await call(gateway, "/api/invoices", key: Self.wayne).json["upstream"] as? String == "wayne-dedicated")
            let stark = try await call(gateway, "/api/invoices", key: Self.stark)
            #expect(stark.status == 403)
            #expect(stark.json["detail"] as? String == "Customer 'stark' has no backend configured.")
            #expect(try await call(gateway, "/api/invoices", key: Self.anonymous).status == 401)
        }
    }

    @Test func dynamicCustomerRoutingExampleFlow() async throws {
        try await withExample("dynamic-customer-routing", upstreams: [("acme-dedicated", "ACME_BACKEND_URL"), ("wayne-dedicated", "WAYNE_BACKEND_URL")], dataVariable: "CUSTOMER_SERVICE_URL") { gateway, _, data in
            #expect(try await call(gateway, "/api/reports/q3", key: Self.acme).json["upstream"] as? String == "acme-dedicated")
            #expect(try await call(gateway, "/api/reports/q3", key: Self.wayne).json["upstream"] as? String == "wayne-dedicated")
            let umbrella = try await call(gateway, "/api/reports/q3", key: Self.umbrella)
            #expect(umbrella.status == 403)
            #expect(umbrella.json["detail"] as? String == "Customer 'umbrella' has no backend configured.")
            let calls = data!.requestCount
            #expect(calls == 3)
            for key in [Self.acme, Self.wayne, Self.umbrella] { _ = try await call(gateway, "/api/x", key: key) }
            #expect(data!.requestCount == calls, "records and the unknown answer are cached")
        }
    }

    @Test func hybridRoutingExampleFlow() async throws {
        try await withExample("hybrid-routing", upstreams: [("acme-dedicated", "ACME_BACKEND_URL"), ("shared", "SHARED_BACKEND_URL")]) { gateway, _, _ in
            let acme = try await call(gateway, "/api/search", key: Self.acme)
            #expect(acme.json["upstream"] as? String == "acme-dedicated")
            #expect(acme.upstreamHeaders["x-tenancy"] == "dedicated")
            let wayne = try await call(gateway, "/api/search", key: Self.wayne)
            #expect(wayne.json["upstream"] as? String == "shared")
            #expect(wayne.upstreamHeaders["x-tenancy"] == "shared")
            #expect(try await call(gateway, "/api/search", key: Self.anonymous).json["upstream"] as? String == "shared")
        }
    }

    /// Mints a token with the example's own documented script (Python standard library).
    func mint(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", ConfigFixture.repositoryRoot() + "/examples/jwt-claims-routing/mint.py"] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let token = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return token.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func jwtClaimsRoutingExampleFlow() async throws {
        // The template needs the enterprise backend's URL with {tenant}, so this example is
        // started by hand rather than with withExample.
        let root = ConfigFixture.repositoryRoot() + "/examples/jwt-claims-routing"
        let enterprise = try await RunningUpstream.start(name: "enterprise")
        let shared = try await RunningUpstream.start(name: "shared")
        let gateway = try await TestGateway.start(
            configDirectory: root + "/config", pluginDirectories: [root + "/plugins"],
            environment: ["ENTERPRISE_URL_TEMPLATE": enterprise.url + "/tenants/{tenant}", "SHARED_URL": shared.url],
            logger: LogCapture().logger())
        func call(_ token: String?) async throws -> Reply {
            try await send(gateway.baseURL + "/api/reports", headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
        }
        let acme = try await call(try mint(["--tenant", "acme", "--tier", "enterprise"]))
        #expect(acme.json["upstream"] as? String == "enterprise")
        #expect(acme.json["path"] as? String == "/tenants/acme/reports")
        #expect(acme.upstreamHeaders["x-tenant-id"] == "acme")
        let initech = try await call(try mint(["--tenant", "initech", "--tier", "pro"]))
        #expect(initech.json["upstream"] as? String == "shared")
        #expect(initech.json["path"] as? String == "/reports")
        let expired = try await call(try mint(["--tenant", "acme", "--ttl", "-120"]))
        #expect(expired.status == 401)
        #expect(expired.json["detail"] as? String == "The token has expired.")
        let anonymous = try await call(nil)
        #expect(anonymous.json["detail"] as? String == "No bearer token was provided.")
        try await gateway.stop()
        try await enterprise.stop()
        try await shared.stop()
    }
}
