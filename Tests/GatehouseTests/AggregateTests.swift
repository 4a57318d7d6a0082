import Foundation
import GatehouseTesting
import Testing

/// Seed 003's aggregation through real sockets: parallel calls to upstream groups, merged in
/// call order, with one slow, one failing and one good service.
@Suite struct AggregateTests {
    static let services = #"""
    "services": {
      "users": { "group": "users", "required": true, "methods": { "get": { "path": "/users/${args.0}" } } },
      "orders": { "group": "orders", "timeoutMs": 2000, "methods": { "list": { "path": "/orders?userId=${args.0.userId}&limit=5" } } },
      "inventory": { "group": "inventory", "methods": { "check": { "path": "/stock/${args.0}" },
                                                        "reserve": { "method": "POST", "path": "/reservations", "bodyArg": 0 } } }
    }
    """#

    func withAggregator(_ body: (TestGateway, [String: RunningUpstream]) async throws -> Void) async throws {
        var running: [String: RunningUpstream] = [:]
        var environment: [String: String] = [:]
        for name in ["users", "orders", "inventory"] {
            running[name] = try await RunningUpstream.start(name: name)
            environment[name.uppercased()] = running[name]!.url
        }
        let fixture = try ConfigFixture(files: [
            "config/upstreams.json": #"""
            { "groups": [ { "name": "users", "targets": [ { "url": "$env(USERS)" } ] },
                          { "name": "orders", "targets": [ { "url": "$env(ORDERS)" } ] },
                          { "name": "inventory", "circuitBreaker": false, "targets": [ { "url": "$env(INVENTORY)" } ] } ] }
            """#,
            "config/routes.oas.json": ConfigFixture.routes([
                ("POST", "/api/aggregate", #"{ "handler": { "type": "aggregate", "options": { "maxCalls": 4, "# + Self.services + #" } } }"#),
                ("GET", "/profile/{id}", #"{ "handler": { "type": "aggregate", "options": { "# + Self.services + #", "calls": [ { "name": "user", "service": "users", "method": "get", "args": ["${params.id}"] }, { "service": "orders", "method": "list", "args": [ { "userId": "${params.id}" } ] }, { "name": "stock", "service": "inventory", "method": "check", "args": ["${query.sku}"] } ] } } }"#),
            ]),
            "config/policies.json": #"{ "policies": [] }"#,
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], environment: environment, logger: LogCapture().logger())
        do {
            try await body(gateway, running)
        } catch {
            try await gateway.stop()
            for u in running.values { try? await u.stop() }
            throw error
        }
        try await gateway.stop()
        for u in running.values { try? await u.stop() }
    }

    func aggregate(_ gateway: TestGateway, _ calls: String) async throws -> Reply {
        try await send(gateway.baseURL + "/api/aggregate", method: .POST, headers: [("content-type", "application/json")], body: #"{"calls":["# + calls + "]}")
    }

    static let seedCalls = #"""
    {"service":"users","method":"get","args":["user-123"]},{"service":"orders","method":"list","args":[{"userId":"user-123"}]},{"service":"inventory","method":"check","args":["SKU-001"]}
    """#

    @Test func oneSlowOneFailingOneGoodGivesAPartialAnswerInCallOrder() async throws {
        try await withAggregator { gateway, up in
            // Held at the upstream until after the answer: its 2 s timeout runs out.
            up["orders"]!.echo.closeGate()
            defer { up["orders"]!.echo.openGate() }
            up["inventory"]!.echo.force(status: 503)
            let r = try await aggregate(gateway, Self.seedCalls)
            #expect(r.status == 200)
            #expect(r.headers["x-gatehouse-partial"].first == "true")
            let users = try #require(r.json["users"] as? [String: Any])
            #expect(users["path"] as? String == "/users/user-123")
            #expect(r.json["orders"] is NSNull)
            #expect(r.json["inventory"] is NSNull)
            let errors = try #require(r.json["errors"] as? [String: String])
            #expect(errors["orders"] == "no answer within 2000 ms")
            #expect(errors["inventory"] == "answered 503")
            // Keys in call order (the slow call finished last, the good one first).
            let order = ["\"users\":", "\"orders\":", "\"inventory\":", "\"errors\":"].map { r.body.range(of: $0)?.lowerBound }
            #expect(order.allSatisfy { $0 != nil })
            #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted())
        }
    }

    @Test func allGoodIsCompleteAndArgumentsAreEncoded() async throws {
        try await withAggregator { gateway, _ in
            let r = try await aggregate(gateway, #"""
            {"service":"users","method":"get","args":["a b/c"]},{"service":"orders","method":"list","args":[{"userId":"x&y=1"}]},{"name":"res","service":"inventory","method":"reserve","args":[{"sku":"SKU-1","qty":2}]}
            """#)
            #expect(r.status == 200)
            #expect(r.headers["x-gatehouse-partial"].isEmpty)
            #expect(r.json["errors"] == nil)
            #expect((r.json["users"] as? [String: Any])?["path"] as? String == "/users/a%20b%2Fc")
            #expect((r.json["orders"] as? [String: Any])?["path"] as? String == "/orders?userId=x%26y%3D1&limit=5")
            let reserve = try #require(r.json["res"] as? [String: Any])
            #expect(reserve["method"] as? String == "POST")
            let sent = try #require((reserve["body"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
            #expect(sent["sku"] as? String == "SKU-1" && sent["qty"] as? Int == 2)
            #expect((reserve["headers"] as? [String: String])?["content-type"] == "application/json")
        }
    }

    @Test func argumentsCannotLeaveTheirSegmentAndConditionalHeadersAreDropped() async throws {
        try await withAggregator { gateway, up in
            let r = try await send(
                gateway.baseURL + "/api/aggregate", method: .POST,
                headers: [("content-type", "application/json"), ("accept-encoding", "gzip"), ("if-none-match", "\"x\""), ("range", "bytes=0-1"), ("x-tenant", "t1")],
                body: #"{"calls":[{"name":"up","service":"users","method":"get","args":[".."],"required":false},{"name":"empty","service":"users","method":"get","args":[""],"required":false},{"name":"ok","service":"users","method":"get","args":["..."]}]}"#)
            #expect(r.status == 200)
            let errors = try #require(r.json["errors"] as? [String: String])
            #expect(errors["up"]?.contains("'..'") == true)
            #expect(errors["empty"] != nil)
            let ok = try #require(r.json["ok"] as? [String: Any])
            #expect(ok["path"] as? String == "/users/...")
            let headers = try #require(ok["headers"] as? [String: String])
            #expect(headers["x-tenant"] == "t1", "the client's other headers go on")
            #expect(headers["accept-encoding"] == nil && headers["if-none-match"] == nil && headers["range"] == nil)
            #expect(headers["accept"] == "application/json")
            #expect(up["users"]!.echo.requestCount == 1, "only the call that stays in its segment was made")
        }
    }

    @Test func aFailedRequiredCallIsA502ListingIt() async throws {
        try await withAggregator { gateway, up in
            up["users"]!.echo.force(status: 500)
            up["inventory"]!.echo.force(status: 503)
            let r = try await aggregate(gateway, #"""
            {"service":"users","method":"get","args":["u"]},{"service":"inventory","method":"check","args":["s"],"required":true},{"service":"orders","method":"list","args":[{"userId":"u"}]}
            """#)
            #expect(r.status == 502)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:aggregate-failed")
            let detail = try #require(r.json["detail"] as? String)
            #expect(detail.contains("users (answered 500)") && detail.contains("inventory (answered 503)"))
            #expect(!detail.contains("orders"), "the optional call that worked is not listed")
            #expect(!r.body.contains("127.0.0.1"))
        }
    }

    @Test func callsRunInParallel() async throws {
        try await withAggregator { gateway, up in
            let echo = up["users"]!.echo
            echo.closeGate()
            let answer = Task {
                try await aggregate(gateway, #"""
                {"name":"a","service":"users","method":"get","args":["1"]},{"name":"b","service":"users","method":"get","args":["2"]},{"name":"c","service":"users","method":"get","args":["3"]}
                """#)
            }
            // All three are at the upstream at once; the gate keeps them there.
            let deadline = Date().addingTimeInterval(15)
            while echo.inFlightNow < 3 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(echo.inFlightNow == 3)
            echo.openGate()
            let r = try await answer.value
            #expect(r.status == 200)
            #expect(["a", "b", "c"].allSatisfy { r.json[$0] is [String: Any] })
        }
    }

    @Test func badRequestsAreRefusedBeforeAnyCall() async throws {
        try await withAggregator { gateway, up in
            let cases: [(String, String)] = [
                (Self.seedCalls + "," + Self.seedCalls, "At most 4 calls"),
                (#"{"service":"payments","method":"get","args":[]}"#, "no service 'payments'"),
                (#"{"service":"users","method":"delete","args":[]}"#, "no method 'delete'"),
                (#"{"service":"users","method":"get","args":["1"]},{"service":"users","method":"get","args":["2"]}"#, "Two calls answer under the name 'users'"),
                (#"{"name":"errors","service":"users","method":"get","args":["1"]}"#, "reserved"),
            ]
            for (calls, fragment) in cases {
                let r = try await aggregate(gateway, calls)
                #expect(r.status == 400, "\(fragment)")
                #expect((r.json["detail"] as? String)?.contains(fragment) == true, "\(r.body)")
            }
            let notJSON = try await send(gateway.baseURL + "/api/aggregate", method: .POST, body: "calls")
            #expect(notJSON.status == 400)
            #expect(up.values.allSatisfy { $0.echo.requestCount == 0 }, "nothing was called")
        }
    }

    @Test func aDeclaredAggregateMergesServicesForAGETRoute() async throws {
        try await withAggregator { gateway, up in
            let r = try await send(gateway.baseURL + "/profile/alice?sku=SKU-9")
            #expect(r.status == 200)
            #expect((r.json["user"] as? [String: Any])?["path"] as? String == "/users/alice")
            #expect((r.json["orders"] as? [String: Any])?["path"] as? String == "/orders?userId=alice&limit=5")
            #expect((r.json["stock"] as? [String: Any])?["path"] as? String == "/stock/SKU-9")
            // A missing request value fails that call only.
            let missing = try await send(gateway.baseURL + "/profile/alice")
            #expect(missing.status == 200)
            #expect((missing.json["errors"] as? [String: String])?["stock"] == "argument 0 is missing")
            #expect(up["inventory"]!.echo.requestCount == 1)
        }
    }
}
