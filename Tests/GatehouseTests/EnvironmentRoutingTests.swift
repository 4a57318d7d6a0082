import Foundation
import GatehouseTesting
import Testing

/// The README walkthrough, live: the shipped config/ and plugins/ in front of two real upstreams.
@Suite struct EnvironmentRoutingTests {
    static let sandboxKey = "sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc"
    static let liveKey = "sk_live_demo_9xK2mQ7vLp3RtY8wZ5nB1cHd"
    static let stagingKey = "sk_test_demo_staging_Qw3Er5Ty7Ui9"

    func withShippedGateway(_ body: (TestGateway, RunningUpstream, RunningUpstream, LogCapture) async throws -> Void) async throws {
        let root = ConfigFixture.repositoryRoot()
        let sandbox = try await RunningUpstream.start(name: "sandbox")
        let production = try await RunningUpstream.start(name: "production")
        let logs = LogCapture()
        let gateway = try await TestGateway.start(
            configDirectory: root + "/config", pluginDirectories: [root + "/plugins"],
            environment: ["SANDBOX_URL": sandbox.url, "PRODUCTION_URL": production.url], logger: logs.logger())
        defer { _ = gateway }
        do {
            try await body(gateway, sandbox, production, logs)
        } catch {
            try await gateway.stop(); try await sandbox.stop(); try await production.stop()
            throw error
        }
        try await gateway.stop(); try await sandbox.stop(); try await production.stop()
    }

    @Test func testKeyReachesSandboxAndLiveKeyReachesProduction() async throws {
        try await withShippedGateway { gateway, sandbox, production, _ in
            let a = try await send(gateway.baseURL + "/v1/customers/42", headers: [("Authorization", "Bearer \(Self.sandboxKey)")])
            #expect(a.status == 200)
            #expect(a.json["upstream"] as? String == "sandbox")
            #expect(a.json["path"] as? String == "/customers/42")
            let b = try await send(gateway.baseURL + "/v1/charges", method: .POST, headers: [("Authorization", "Bearer \(Self.liveKey)")], body: "{\"amount\":5}")
            #expect(b.status == 200)
            #expect(b.json["upstream"] as? String == "production")
            #expect(b.json["body"] as? String == "{\"amount\":5}")
            #expect(sandbox.requestCount == 1)
            #expect(production.requestCount == 1)
            // The scheme is matched without regard to case, and must be followed by a space.
            let lower = try await send(gateway.baseURL + "/v1/customers/42", headers: [("Authorization", "bEARER \(Self.sandboxKey)")])
            #expect(lower.status == 200)
            let glued = try await send(gateway.baseURL + "/v1/customers/42", headers: [("Authorization", "Bearer" + Self.sandboxKey)])
            #expect(glued.status == 401)
            let other = try await send(gateway.baseURL + "/v1/customers/42", headers: [("Authorization", "Basic \(Self.sandboxKey)")])
            #expect(other.status == 401)
        }
    }

    @Test func policySetHeaderArrivesUpstreamAndOutboundPolicyAddsOne() async throws {
        try await withShippedGateway { gateway, _, _, _ in
            let r = try await send(gateway.baseURL + "/v1/x", headers: [("Authorization", "Bearer \(Self.liveKey)")])
            #expect(r.upstreamHeaders["x-gatehouse-environment"] == "production")
            // hideCredentials: the caller's key stops at the gateway.
            #expect(r.upstreamHeaders["authorization"] == nil)
            #expect(!r.body.contains(Self.liveKey))
            #expect(r.headers.first(name: "x-served-by") == "production")
            #expect(r.headers.first(name: "x-request-id")?.isEmpty == false)
        }
    }

    @Test func forwardedHeadersAndQueryArePreserved() async throws {
        try await withShippedGateway { gateway, _, _, _ in
            let r = try await send(gateway.baseURL + "/v1/search?q=a%20b&page=2", headers: [
                ("Authorization", "Bearer \(Self.sandboxKey)"), ("X-Forwarded-For", "203.0.113.9"),
            ])
            #expect(r.json["path"] as? String == "/search?q=a%20b&page=2")
            #expect(r.upstreamHeaders["x-forwarded-for"] == "203.0.113.9, 127.0.0.1")
            #expect(r.upstreamHeaders["x-forwarded-proto"] == "http")
            #expect(r.upstreamHeaders["x-forwarded-host"] == "127.0.0.1:\(gateway.port)")
            #expect(r.upstreamHeaders["host"]?.hasPrefix("127.0.0.1:") == true)
            #expect(r.upstreamHeaders["host"] != "127.0.0.1:\(gateway.port)", "Host is the upstream's")
        }
    }

    @Test func missingOrWrongKeyIs401ProblemAndNeverReachesAnUpstream() async throws {
        try await withShippedGateway { gateway, sandbox, production, _ in
            for headers in [[], [("Authorization", "Bearer sk_test_not_a_key")], [("Authorization", "Basic Zm9vOmJhcg==")]] {
                let r = try await send(gateway.baseURL + "/v1/charges", headers: headers)
                #expect(r.status == 401)
                #expect(r.headers.first(name: "content-type") == "application/problem+json")
                #expect(r.headers.first(name: "www-authenticate")?.hasPrefix("Bearer") == true)
                #expect(r.json["status"] as? Int == 401)
                #expect(r.json["requestId"] as? String == r.headers.first(name: "x-request-id"))
                #expect(!r.body.contains("sk_test_not_a_key"), "the key is never echoed")
            }
            #expect(sandbox.requestCount + production.requestCount == 0)
        }
    }

    @Test func unknownEnvironmentIsAProblemNotACrash() async throws {
        try await withShippedGateway { gateway, sandbox, production, logs in
            let r = try await send(gateway.baseURL + "/v1/charges", headers: [("Authorization", "Bearer \(Self.stagingKey)")])
            #expect(r.status == 403)
            #expect(r.json["title"] as? String == "Forbidden")
            #expect(sandbox.requestCount + production.requestCount == 0)
            #expect(logs.all.contains { $0.message.contains("no backend") && $0.metadata["environment"] == "staging" && $0.metadata["policy"] == "environment-routing" })
            let again = try await send(gateway.baseURL + "/v1/charges", headers: [("Authorization", "Bearer \(Self.sandboxKey)")])
            #expect(again.status == 200)
        }
    }

    @Test func healthAnd404And405AreProblems() async throws {
        try await withShippedGateway { gateway, _, _, _ in
            #expect(try await send(gateway.baseURL + "/health").json["status"] as? String == "ok")
            let missing = try await send(gateway.baseURL + "/nowhere")
            #expect(missing.status == 404)
            #expect(missing.json["type"] as? String == "urn:gatehouse:problem:route-not-found")
            let wrong = try await send(gateway.baseURL + "/health", method: .DELETE)
            #expect(wrong.status == 405)
            #expect(wrong.headers.first(name: "allow") == "GET")
        }
    }
}
