import Foundation
import GatehousePolicies
import GatehouseTesting
import Testing

/// Seed 003's four tiers, each named by a JWT claim (tokens minted by joserfc,
/// Tests/Fixtures/jwt) and by API-key metadata: each tenant gets exactly its tier's burst at
/// once, then 429s (a manual clock, so no refill happens meanwhile).
@Suite struct RateLimitTierTests {
    static let bursts = ["free": 10, "starter": 50, "pro": 200, "enterprise": 1000]
    static let keyHashes = [
        "free": "32039f7f3e056a43d898fa5f4440ffb4b564febdccfa1ea97bf9c6b4c5af44c9",
        "starter": "1ed0064712b6365270226599e50a36187ca1a1f47109e0cefee8e7ad442a5471",
        "pro": "df7cee9c89a0fdba6dc9f7ef8ed93878e5ffb983a9598142100a5d30a390711b",
        "enterprise": "7c9b9a8a9ea5e52ae6fecbc6577f109bf954c62060c5b9c2c11a8d643311902e",
    ]

    /// `mode: "redis"` counts in a private, fresh redis-server (Redis' clock: refills happen in
    /// real time there, which the assertions allow for).
    func withTieredGateway(mode: String = "local", _ body: (TestGateway) async throws -> Void) async throws {
        let redis = mode == "redis" ? try RedisServer.start() : nil
        let modeOptions = redis == nil ? "" : #""mode": "redis", "#
        let consumers = Self.keyHashes.map { tier, hash in
            #"{ "sub": "key-"# + tier + #"", "keys": [ { "sha256": ""# + hash + #"" } ], "metadata": { "tier": ""# + tier + #"" } }"#
        }
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/by-key", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["keys", "by-metadata"] } }"#),
                ("GET", "/by-claim", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["jwt", "by-claim"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": ["#
                + #"{ "name": "keys", "policyType": "api-key-inbound" },"#
                + #"{ "name": "jwt", "policyType": "jwt-inbound", "options": { "keys": [ { "alg": "HS256", "secret": "$env(JWT_SECRET)" } ], "issuer": "https://issuer.test", "audience": "gatehouse-tests" } },"#
                + #"{ "name": "by-metadata", "policyType": "rate-limit-inbound", "options": { "# + modeOptions + #""tierFrom": "data.tier", "defaultTier": "free", "# + RateLimitTests.tiers + " } },"
                + #"{ "name": "by-claim", "policyType": "rate-limit-inbound", "options": { "tierFrom": "data.subscription_tier", "defaultTier": "free", "# + RateLimitTests.tiers + " } }"
                + "] }",
            "config/consumers.json": #"{ "consumers": ["# + consumers.joined(separator: ",") + "] }",
            "config/gatehouse.json": redis.map { #"{ "redis": { "url": ""# + $0.url + #"", "commandTimeoutMs": 5000 } }"# } ?? "{}",
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            environment: ["JWT_SECRET": JWTTests.secret], logger: LogCapture().logger(), clock: .manual())
        do {
            try await body(gateway)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    /// Sends `burst + 5` requests with `credential`, 20 at a time: how many passed, and the
    /// `RateLimit-Policy` they carried.
    func passes(_ gateway: TestGateway, _ path: String, _ credential: String, total: Int) async throws -> (Int, Set<String>) {
        var passed = 0
        var policies = Set<String>()
        var sent = 0
        while sent < total {
            let batch = min(20, total - sent)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<batch { group.addTask { try await send(gateway.baseURL + path, headers: [("Authorization", "Bearer \(credential)")]) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for reply in replies {
                #expect(reply.status == 200 || reply.status == 429, "\(reply.status) \(reply.body)")
                if reply.status == 200 { passed += 1 }
                policies.formUnion(reply.headers["ratelimit-policy"])
            }
            sent += batch
        }
        return (passed, policies)
    }

    @Test(arguments: ["free", "starter", "pro", "enterprise"], ["local", "redis"])
    func eachTierFromAPIKeyMetadata(tier: String, mode: String) async throws {
        let burst = Self.bursts[tier]!
        let rpm = ["free": 100, "starter": 1000, "pro": 10000, "enterprise": 100000][tier]!
        try await withTieredGateway(mode: mode) { gateway in
            let started = ContinuousClock.now
            let (passed, policies) = try await passes(gateway, "/by-key", "sk_tier_" + tier, total: burst + 5)
            if mode == "local" {
                #expect(passed == burst)
            } else {
                // Redis refills in real time: the burst, plus one per 60/rpm s the run took.
                let refills = Int((ContinuousClock.now - started) / .microseconds(60_000_000 / rpm))
                #expect(passed >= burst && passed <= burst + refills, "\(passed)")
            }
            #expect(policies == ["\(rpm);w=60;burst=\(burst)"])
        }
    }

    @Test(arguments: ["free", "starter", "pro", "enterprise"])
    func eachTierFromAJWTClaim(tier: String) async throws {
        let burst = Self.bursts[tier]!
        let token = try #require(JWTTests.tokens["tier_" + tier], "Tests/Fixtures/jwt/make_tokens.py --add-tiers")
        try await withTieredGateway { gateway in
            let (passed, _) = try await passes(gateway, "/by-claim", token, total: burst + 5)
            #expect(passed == burst)
        }
    }
}
