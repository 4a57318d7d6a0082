import Foundation
import GatehouseTesting
import Testing

/// Inbound/outbound policies, handlers and policy failures, live over loopback.
@Suite struct PolicyBehaviourTests {
    func withFixture(_ body: (TestGateway, RunningUpstream, LogCapture) async throws -> Void) async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, logs in
            try await body(gateway, upstreams["main"]!, logs)
        }
    }

    @Test func shortCircuitResponseNeverReachesTheUpstream() async throws {
        try await withFixture { gateway, upstream, _ in
            let r = try await send(gateway.baseURL + "/short")
            #expect(r.status == 418)
            #expect(r.json["short"] as? Bool == true)
            #expect(r.json["id"] as? String == r.headers.first(name: "x-request-id"))
            #expect(upstream.requestCount == 0)
        }
    }

    @Test func scriptErrorIs500ProblemLoggedWithFileLineAndTheGatewayKeepsServing() async throws {
        try await withFixture { gateway, upstream, logs in
            let r = try await send(gateway.baseURL + "/boom")
            #expect(r.status == 500)
            #expect(r.headers.first(name: "content-type") == "application/problem+json")
            let id = try #require(r.headers.first(name: "x-request-id"))
            #expect(r.json["requestId"] as? String == id)
            #expect(r.json["detail"] as? String == "The policy 'boom' failed while handling this request.")
            #expect(!r.body.contains("missing"), "script internals are not echoed")
            let line = logs.all.first { $0.metadata["request-id"] == id && $0.level == .error }
            #expect(line?.metadata["file"] == "plugins/boom.lua")
            #expect(line?.metadata["line"] == "3")
            #expect(line?.metadata["policy"] == "boom")
            #expect(line?.metadata["traceback"]?.contains("plugins/boom.lua:3") == true)
            #expect(upstream.requestCount == 0)
            // The same VMs go on serving.
            for _ in 0..<4 { #expect(try await send(gateway.baseURL + "/short").status == 418) }
            #expect(try await send(gateway.baseURL + "/hop").status == 200)
        }
    }

    @Test func wrongReturnValueIsAProblemNamingThePolicy() async throws {
        try await withFixture { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/badreturn")
            #expect(r.status == 500)
            #expect(logs.all.contains { $0.message.contains("'badreturn' returned a number; an inbound policy must return the request") })
        }
    }

    @Test func aHandleKeptPastItsRequestIsAClearErrorNotADanglingPointer() async throws {
        try await withFixture { gateway, _, logs in
            // One connection per request may land on any loop: repeat until a VM sees a second request.
            var failures = 0
            for _ in 0..<16 where failures == 0 {
                let r = try await send(gateway.baseURL + "/keeper")
                if r.status == 500 { failures += 1 } else { #expect(r.status == 200) }
            }
            #expect(failures == 1)
            #expect(logs.all.contains { $0.message.contains("request used after its request ended") && $0.metadata["file"] == "plugins/keeper.lua" })
        }
    }

    @Test func requestChangesByAPolicyAreForwarded() async throws {
        try await withFixture { gateway, upstream, _ in
            let r = try await send(gateway.baseURL + "/fwd/a/b?keep=1", headers: [("x-drop", "1"), ("x-stay", "1")])
            #expect(r.status == 200)
            #expect(r.json["path"] as? String == "/changed/a/b?keep=1&added=1")
            #expect(r.upstreamHeaders["x-added"] == "yes")
            #expect(r.upstreamHeaders["x-drop"] == nil)
            #expect(r.upstreamHeaders["x-stay"] == "1")
            #expect(upstream.requestCount == 1)
        }
    }

    @Test func aBodyReadByAPolicyIsStillForwardedIntact() async throws {
        try await withFixture { gateway, _, _ in
            let payload = #"{"amount": 1250, "currency": "eur"}"#
            let r = try await send(gateway.baseURL + "/body", method: .POST, headers: [("content-type", "application/json")], body: payload)
            #expect(r.status == 200)
            #expect(r.upstreamHeaders["x-amount"] == "1250")
            #expect(r.json["body"] as? String == payload)
        }
    }

    @Test func aBodyOverTheLimitIs413AndNeverReachesTheUpstream() async throws {
        try await withFixture { gateway, upstream, _ in
            let payload = "{\"amount\": 1, \"padding\": \"" + String(repeating: "x", count: 5000) + "\"}"
            let r = try await send(gateway.baseURL + "/body", method: .POST, headers: [("content-type", "application/json")], body: payload)
            #expect(r.status == 413)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:payload-too-large")
            #expect(upstream.requestCount == 0)
        }
    }

    @Test func luaHandlerStaticHandlerAndRewriteWithEncodedValues() async throws {
        try await withFixture { gateway, upstream, _ in
            let hello = try await send(gateway.baseURL + "/hello/ada")
            #expect(hello.json["message"] as? String == "hi ada")
            #expect(hello.json["route"] as? String == "/hello/{name}")
            let mock = try await send(gateway.baseURL + "/static")
            #expect(mock.status == 202)
            #expect(mock.body == "mocked")
            #expect(mock.headers.first(name: "x-mock") == "1")
            // An encoded `?` and space stay inside the parameter (`%2F` is refused by default:
            // RequestIntegrityTests).
            let item = try await send(gateway.baseURL + "/items/a%20b%3Fc?x=1", headers: [("x-src", "a&b")])
            #expect(item.json["path"] as? String == "/v2/items/a%20b%3Fc?src=a%26b&x=1")
            #expect(upstream.requestCount == 1)
        }
    }

    @Test func failOpenPolicyErrorIsLoggedAndTheChainGoesOn() async throws {
        try await withFixture { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/failopen")
            #expect(r.status == 418, "the next policy ran")
            #expect(logs.all.contains { $0.message.contains("failMode open") && $0.metadata["policy"] == "failopen" })
        }
    }

    @Test func outboundPolicyCanReadAndReplaceTheResponse() async throws {
        try await withFixture { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/wrapped")
            #expect(r.status == 201)
            #expect(r.json["wrapped"] as? String == "main")
            #expect(r.json["status"] as? Int == 200)
            #expect(r.headers.first(name: "x-wrapped") == "1")
        }
    }

    @Test func userSetInLuaIsSeenByTheNextPolicy() async throws {
        try await withFixture { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/user")
            #expect(r.upstreamHeaders["x-tier"] == "gold")
            #expect(r.upstreamHeaders["x-sub"] == "lua-user")
        }
    }

    /// The wall clock bounds a wait: a fetch allowed 30 s ends at the policy's 300 ms budget.
    @Test func aWaitOutlastingTheWallClockBudgetEndsTheInvocation() async throws {
        try await withFixture { gateway, _, logs in
            let started = ContinuousClock.now
            let r = try await send(gateway.baseURL + "/impatient")
            #expect(r.status == 500)
            #expect(r.json["detail"] as? String == "The policy 'impatient' exceeded its wall-clock budget.", "\(r.body)")
            #expect(logs.all.contains { $0.metadata["budget"] == "wall-clock" })
            // A liveness bound, far from both: 0.3 s budget, 5 s upstream, 30 s fetch timeout.
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test func aPolicyCanHaveATighterBudgetThanTheDefault() async throws {
        try await withFixture { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/tight")
            #expect(r.status == 500)
            #expect(r.json["detail"] as? String == "The policy 'tight' exceeded its instruction budget.")
            #expect(logs.all.contains { $0.metadata["policy"] == "tight" && $0.metadata["budget"] == "instruction" })
            #expect(try await send(gateway.baseURL + "/hop").status == 200, "other policies keep the default")
        }
    }

    @Test func runawayPolicyIsStoppedByItsBudgetAndTheVMServesTheNextRequest() async throws {
        try await withFixture { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/spin")
            #expect(r.status == 500)
            #expect(r.json["detail"] as? String == "The policy 'spin' exceeded its time budget.")
            let line = logs.all.first { $0.metadata["budget"] != nil }
            #expect(line?.metadata["budget"] == "time", "\(String(describing: line))")
            #expect(line?.metadata["file"] == "plugins/spin.lua")
            for _ in 0..<4 { #expect(try await send(gateway.baseURL + "/short").status == 418) }
        }
    }
}
