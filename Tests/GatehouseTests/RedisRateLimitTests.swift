import Foundation
import GatehousePolicies
import GatehouseRedis
import GatehouseTesting
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Testing

/// `rate-limit-inbound` with `mode: "redis"` against a real `redis-server`: exact across two
/// gateway processes, each `onStoreFailure` mode while Redis is down and after it returns, a
/// slow Redis cut off by the command timeout, and reloads under load.
@Suite(.enabled(if: RedisServer.available, Comment(rawValue: RedisServer.skipReason)))
struct RedisRateLimitTests {
    /// A project whose `/limited/{mode}` routes are limited by tenant header, in Redis, with the
    /// given `onStoreFailure` per route.
    static func project(redisURL: String, tier: String = #"{ "rpm": 100, "burst": 10 }"#, commandTimeoutMs: Int = 5_000) throws -> ConfigFixture {
        let modes = ["local", "allow", "deny"]
        let policies = modes.map { mode in
            #"{ "name": "limit-"# + mode + #"", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "header", "headerName": "X-Tenant", "mode": "redis", "onStoreFailure": ""# + mode + #"", "tiers": { "free": "# + tier + " } } }"
        }
        return try ConfigFixture(files: [
            "config/gatehouse.json": #"{ "redis": { "url": ""# + redisURL + #"", "commandTimeoutMs": "# + String(commandTimeoutMs) + #", "connectTimeoutMs": 500 } }"#,
            "config/routes.oas.json": ConfigFixture.routes(modes.map { mode in
                ("GET", "/limited/" + mode, #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["limit-"# + mode + #""] } }"#)
            } + [("GET", "/other", #"{ "handler": { "type": "static" } }"#)]),
            "config/policies.json": #"{ "policies": ["# + policies.joined(separator: ",") + "] }",
        ])
    }

    func call(_ base: String, _ mode: String, tenant: String) async throws -> Reply {
        try await send(base + "/limited/" + mode, headers: [("X-Tenant", tenant)])
    }

    @Test func twoGatewayProcessesShareOneRedisExactly() async throws {
        // deny on store failure (and the fixtures' generous command timeout): a
        // request Redis did not count is a 503 here, never a silent local pass.
        let fixture = try Self.project(redisURL: try RedisServer.sharedURL())
        defer { fixture.remove() }
        let one = try GatewayProcess.serve(fixture)
        let two = try GatewayProcess.serve(fixture)
        defer { one.stop(); two.stop() }
        let tenant = "tenant-" + UUID().uuidString
        // Warm both gateways' Redis connections with another tenant.
        for gateway in [one, two] { _ = try await call(gateway.baseURL, "deny", tenant: "warm-" + tenant) }
        var configuration = try RedisConfiguration(url: try RedisServer.sharedURL())
        configuration.commandTimeout = .seconds(10)
        let redis = RedisClient(configuration: configuration, loops: [MultiThreadedEventLoopGroup.singleton.next()], logger: Logger(label: "t"))
        defer { redis.shutdown() }
        func redisMicroseconds() async throws -> Int64 {
            let time = try #require(try await redis.send(["TIME"]).array)
            return try #require(time[0].integer) * 1_000_000 + (try #require(time[1].integer))
        }
        let before = try await redisMicroseconds()
        let started = ContinuousClock.now
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<400 {
                let base = i % 2 == 0 ? one.baseURL : two.baseURL
                group.addTask { try await self.call(base, "deny", tenant: tenant).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        let passed = statuses.filter { $0 == 200 }.count
        #expect(statuses.filter { $0 == 429 }.count == 400 - passed, "every other answer is a 429 (no 503: Redis answered every one)")
        // The burst of 10, plus one per 600 ms that the run lasted.
        let refills = Int(elapsed / .milliseconds(600))
        #expect(passed >= 10 && passed <= 10 + refills, "\(passed) passed in \(elapsed)")
        // Exactly, whatever the machine's load (the tenant key is `header:<value>`; the bucket
        // lives on about 6 s after its last pass): the bucket started no earlier than `before`, and
        // each pass moved its arrival time by one interval (600,000 µs), so more passes than
        // (arrival − before) / interval would mean a request admitted twice or a lost update.
        let arrival = try #require(try await redis.send(["GET", "gh:rl:{header:\(tenant)}:p:limit-deny"]).string.flatMap { Int64($0) })
        #expect(Int64(passed) * 600_000 <= arrival - before, "\(passed) passes, arrival \(arrival - before) µs after the start")
    }

    @Test func eachStoreFailureModeWhileRedisIsDownAndRecovery() async throws {
        let redis = try RedisServer.start()
        let fixture = try Self.project(redisURL: redis.url, tier: #"{ "rpm": 1, "burst": 3 }"#)
        defer { fixture.remove() }
        let logs = LogCapture()
        let gateway = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: logs.logger())
        do {
            let base = gateway.baseURL
            // Counted in Redis: three, then 429.
            for _ in 0..<3 { #expect(try await call(base, "deny", tenant: "a").status == 200) }
            #expect(try await call(base, "deny", tenant: "a").status == 429)

            redis.kill()
            // local: per-instance counting (the local store never saw tenant a).
            var local: [Int] = []
            for _ in 0..<5 { local.append(try await call(base, "local", tenant: "a").status) }
            #expect(local == [200, 200, 200, 429, 429])
            // allow: through, uncounted and without RateLimit headers.
            for _ in 0..<5 {
                let reply = try await call(base, "allow", tenant: "a")
                #expect(reply.status == 200)
                #expect(reply.headers["ratelimit-remaining"].isEmpty)
            }
            // deny: 503 problem.
            for _ in 0..<5 {
                let reply = try await call(base, "deny", tenant: "b")
                #expect(reply.status == 503)
                #expect(reply.json["type"] as? String == "urn:gatehouse:problem:rate-limit-store-unavailable")
                #expect(reply.headers["retry-after"].first == "1")
            }
            // One line per policy for the whole outage, not one per request.
            let down = logs.all.filter { $0.message.contains("the Redis store is unavailable") }
            #expect(down.count == 3, "\(down.map(\.message))")
            #expect(down.contains { $0.message.contains("'limit-deny'") && $0.message.contains("503") })

            try redis.restart()
            // Reconnects within the backoff: counted in Redis again (the restarted, empty server).
            // Recovered once ten requests in a row were counted (each loop's connection may
            // come back at its own moment).
            var inARow = 0
            for attempt in 0..<400 where inARow < 10 {
                if try await call(base, "deny", tenant: "probe-\(attempt)").status == 200 { inARow += 1 } else {
                    inARow = 0
                    try await Task.sleep(for: .milliseconds(25))
                }
            }
            #expect(inARow == 10)
            #expect(try await call(base, "deny", tenant: "c").status == 200)
            for _ in 0..<2 { #expect(try await call(base, "deny", tenant: "c").status == 200) }
            #expect(try await call(base, "deny", tenant: "c").status == 429)
            // "Reachable again" once Redis has answered for the quiet period (2.5 s), once.
            var up: [LogCapture.Record] = []
            for _ in 0..<400 where up.isEmpty {
                _ = try await call(base, "deny", tenant: "d")
                up = logs.all.filter { $0.message.contains("reachable again") && $0.message.contains("'limit-deny'") }
                if up.isEmpty { try await Task.sleep(for: .milliseconds(25)) }
            }
            for _ in 0..<5 { _ = try await call(base, "deny", tenant: "d") }
            up = logs.all.filter { $0.message.contains("reachable again") && $0.message.contains("'limit-deny'") }
            #expect(up.count == 1)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    @Test func aSlowRedisCostsTheCommandTimeoutNotTheRequests() async throws {
        let redis = try RedisServer.start(arguments: ["--enable-debug-command", "yes"])
        let fixture = try Self.project(redisURL: redis.url, commandTimeoutMs: 100)
        defer { fixture.remove() }
        let logs = LogCapture()
        let gateway = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: logs.logger())
        let blocker = RedisClient(
            configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port, commandTimeout: .seconds(30)),
            loops: [MultiThreadedEventLoopGroup.singleton.next()], logger: Logger(label: "blocker"))
        do {
            #expect(try await call(gateway.baseURL, "local", tenant: "slow").status == 200)
            let woke = NIOLockedValueBox(false)
            let asleep = Task {
                _ = try await blocker.send(["DEBUG", "SLEEP", "5"])
                woke.withLockedValue { $0 = true }
            }
            // Until the sleep reaches the server, requests are counted in Redis; the first one
            // that meets the sleeping server must be answered (by the local fallback) while the
            // server still sleeps: cut off by the 100 ms command timeout.
            var answeredDuringSleep = false
            for _ in 0..<200 where !answeredDuringSleep {
                let reply = try await call(gateway.baseURL, "local", tenant: "slow")
                #expect(reply.status == 200)
                if logs.all.contains(where: { $0.message.contains("the Redis store is unavailable") && $0.message.contains("timed out") }) {
                    answeredDuringSleep = true
                    #expect(!woke.withLockedValue { $0 }, "answered before Redis woke up")
                }
            }
            #expect(answeredDuringSleep)
            _ = try await asleep.value
        } catch {
            blocker.shutdown()
            try await gateway.stop()
            throw error
        }
        blocker.shutdown()
        try await gateway.stop()
    }

    @Test(arguments: ["local", "redis"])
    func aReloadUnderLoadKeepsTheCounter(mode: String) async throws {
        let policy = #"{ "name": "limit", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "header", "headerName": "X-Tenant", "mode": ""# + mode + #"", "tiers": { "t": { "rpm": 1, "burst": 20 } } } }"#
        func routes(_ extra: Int) -> String {
            ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["limit"] } }"#)]
                + (0..<extra).map { ("GET", "/extra\($0)", #"{ "handler": { "type": "static" } }"#) })
        }
        let fixture = try ConfigFixture(files: [
            "config/gatehouse.json": #"{ "redis": { "url": ""# + (try RedisServer.sharedURL()) + #"", "commandTimeoutMs": 5000 } }"#,
            "config/routes.oas.json": routes(0),
            "config/policies.json": #"{ "policies": ["# + policy + "] }",
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger())
        do {
            let tenant = "reload-" + UUID().uuidString
            // 60 requests (one refill takes 60 s): 20 pass, whatever reloads happen meanwhile.
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var out: [Int] = []
                        for _ in 0..<15 { out.append(try await send(gateway.baseURL + "/x", headers: [("X-Tenant", tenant)]).status) }
                        return out
                    }
                }
                group.addTask {
                    for generation in 1...3 {
                        try fixture.write("config/routes.oas.json", routes(generation))
                        guard case .success = await gateway.reloader.reload(reason: "test") else { throw RedisServerError("reload failed") }
                    }
                    return []
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(statuses.count == 60)
            #expect(statuses.filter { $0 == 200 }.count == 20)
            #expect(statuses.filter { $0 == 429 }.count == 40)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }
}
