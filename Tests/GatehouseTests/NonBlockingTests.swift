import Foundation
import GatehousePolicies
import GatehouseTesting
import Testing

/// http.fetch / http.all, zone caches and background loaders, live against a counting upstream.
@Suite struct NonBlockingTests {
    static func fixture() throws -> ConfigFixture {
        func lua(_ name: String) -> String {
            #"{ "name": ""# + name + #"", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/"# + name + #")" }, "options": { "upstream": "$env(UPSTREAM_MAIN)" } }"#
        }
        let names = ["cached", "loaded", "timeout", "all", "slowfetch", "sorted", "quick"]
        return try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes(names.map { name in
                ("GET", "/\(name)", #"{ "handler": { "type": "static" }, "policies": { "inbound": [""# + name + #""] } }"#)
            }),
            "config/policies.json": #"{ "policies": ["# + names.map(lua).joined(separator: ",") + "] }",
            "plugins/cached.lua": """
                local zone = cache.zone("records", { maxEntries = 100 })
                return function(request, context, options)
                  local record = zone:get("acme")
                  if record == nil then
                    local res, err = http.fetch(options.upstream .. "/records/acme")
                    if res == nil then return problems.badGateway(request, context, { detail = err }) end
                    record = res:json()
                    zone:put("acme", record, 300)
                  end
                  return Response.json({ path = record.path, count = record.count })
                end
                """,
            "plugins/loaded.lua": """
                local upstream
                local records = loader.new("records", function(key)
                  local res, err = http.fetch(upstream .. "/records/" .. key, { timeout = 5 })
                  if res == nil then return nil, err end
                  if res.status ~= 200 then return nil, "config service answered " .. res.status end
                  return res:json()
                end, { ttl = 1, timeout = 5 })
                return function(request, context, options)
                  upstream = options.upstream
                  local record, err = records:get("acme")
                  if record == nil then return problems.serviceUnavailable(request, context, { detail = err }) end
                  return Response.json({ count = record.count })
                end
                """,
            "plugins/timeout.lua": """
                return function(request, context, options)
                  local started = os.clock()
                  local res, err = http.fetch(options.upstream .. "/slow", { timeout = 0.3, headers = { ["x-echo-delay-ms"] = "8000" } })
                  return Response.json({ ok = res ~= nil, error = err })
                end
                """,
            "plugins/all.lua": """
                return function(request, context, options)
                  local slow = { headers = { ["x-echo-delay-ms"] = "1000" } }
                  local results = http.all({
                    { options.upstream .. "/a", slow }, { options.upstream .. "/b", slow }, { options.upstream .. "/c", slow },
                    { "http://127.0.0.1:1/refused" },
                  }, { timeout = 5 })
                  local paths = {}
                  for i = 1, 3 do paths[i] = results[i].response:json().path end
                  return Response.json({ paths = paths, fourth = results[4].error })
                end
                """,
            "plugins/slowfetch.lua": """
                return function(request, context, options)
                  local res = http.fetch(options.upstream .. "/slow")
                  return Response.json({ status = res.status })
                end
                """,
            "plugins/quick.lua": "return function() return Response.json({ quick = true }) end\n",
            "plugins/sorted.lua": """
                return function(request, context, options)
                  table.sort({ 3, 1, 2 }, function(a, b)
                    http.fetch(options.upstream .. "/x")
                    return a < b
                  end)
                  return request
                end
                """,
        ])
    }

    func withFixture(clock: ServiceClock = .system, _ body: (TestGateway, RunningUpstream, LogCapture) async throws -> Void) async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture, clock: clock) { gateway, upstreams, logs in try await body(gateway, upstreams["main"]!, logs) }
    }

    @Test func theZoneCacheServesRepeatsWithoutCallingTheService() async throws {
        try await withFixture { gateway, upstream, _ in
            for _ in 0..<5 {
                let r = try await send(gateway.baseURL + "/cached")
                #expect(r.json["path"] as? String == "/records/acme")
                #expect(r.json["count"] as? Int == 1)
            }
            #expect(upstream.requestCount == 1)
        }
    }

    @Test func theLoaderMakesOneCallForFiftyConcurrentFirstRequests() async throws {
        // A manual clock: the value never goes stale during the test, however slowly a loaded
        // machine serves the fifty, so this tests the in-flight deduplication only.
        try await withFixture(clock: ServiceClock.manual()) { gateway, upstream, _ in
            upstream.echo.force(delayMilliseconds: 300)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<50 { group.addTask { try await send(gateway.baseURL + "/loaded", client: wideClient) } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 200 && $0.json["count"] as? Int == 1 })
            #expect(upstream.requestCount == 1)
        }
    }

    @Test func aStaleValueIsServedWhileExactlyOneRefreshRuns() async throws {
        let clock = ServiceClock.manual()
        try await withFixture(clock: clock) { gateway, upstream, _ in
            #expect(try await send(gateway.baseURL + "/loaded").json["count"] as? Int == 1)
            clock.advance(by: .milliseconds(1100)) // past the 1 s TTL
            upstream.echo.force(delayMilliseconds: 800)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<10 { group.addTask { try await send(gateway.baseURL + "/loaded", client: wideClient) } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.json["count"] as? Int == 1 }, "stale value, nobody waited for the refresh")
            upstream.echo.force(delayMilliseconds: nil)
            var latest = 1
            for _ in 0..<40 where latest == 1 {
                try await Task.sleep(for: .milliseconds(50))
                latest = try await send(gateway.baseURL + "/loaded").json["count"] as? Int ?? 0
            }
            #expect(latest == 2, "the refreshed value arrives")
            #expect(upstream.requestCount == 2, "exactly one refresh")
        }
    }

    @Test func aFailingRefreshKeepsTheLastGoodValue() async throws {
        try await withFixture { gateway, upstream, logs in
            #expect(try await send(gateway.baseURL + "/loaded").json["count"] as? Int == 1)
            upstream.echo.force(status: 503)
            for _ in 0..<6 {
                try await Task.sleep(for: .milliseconds(300))
                let r = try await send(gateway.baseURL + "/loaded")
                #expect(r.status == 200)
                #expect(r.json["count"] as? Int == 1)
            }
            #expect(upstream.requestCount >= 2, "refreshes were attempted")
            #expect(logs.all.contains { $0.message.contains("loader failed") && $0.metadata["error"]?.contains("answered 503") == true })
        }
    }

    @Test func aFetchTimeoutReturnsNilAndAnErrorInBoundedTime() async throws {
        try await withFixture { gateway, _, _ in
            let started = ContinuousClock.now
            let r = try await send(gateway.baseURL + "/timeout")
            // A liveness bound, far from both: the 0.3 s timeout, not the upstream's 8 s.
            #expect(ContinuousClock.now - started < .seconds(6), "well before the upstream's 8 s")
            #expect(r.json["ok"] as? Bool == false)
            #expect((r.json["error"] as? String)?.contains("did not answer within") == true)
        }
    }

    @Test func httpAllRunsCallsInParallelAndReportsEachError() async throws {
        try await withFixture { gateway, upstream, _ in
            let r = try await send(gateway.baseURL + "/all")
            #expect(r.json["paths"] as? [String] == ["/a", "/b", "/c"])
            #expect((r.json["fourth"] as? String)?.contains("127.0.0.1:1") == true)
            // In parallel: the upstream was answering all three at once (each takes 1 s), which
            // is observed directly rather than timed (a timing flakes on a loaded machine).
            #expect(upstream.echo.mostInFlight == 3, "the calls overlapped only \(upstream.echo.mostInFlight) at a time")
            #expect(upstream.requestCount == 3)
        }
    }

    @Test func requestsWaitingOnASlowFetchDoNotStallOtherRoutes() async throws {
        try await withFixture { gateway, upstream, _ in
            // The slow fetches are held at the upstream until the quick requests are done, so
            // "meanwhile" does not depend on how fast a loaded machine serves the quick ones.
            upstream.echo.closeGate()
            let slowDone = Counter()
            let slow = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            _ = try await send(gateway.baseURL + "/slowfetch", client: wideClient)
                            slowDone.increment()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Every slow fetch has reached the upstream and waits there.
            for _ in 0..<2000 where upstream.echo.inFlightNow < 50 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(upstream.echo.inFlightNow == 50)
            var quick = 0
            let port = gateway.port
            for _ in 0..<20 {
                // Own sockets, so no client-side pool queues these behind the slow ones.
                let r = try await RawHTTP.send(port: port, "GET /quick HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if r.status == 200 && r.body.contains("quick") { quick += 1 }
            }
            let slowFinishedMeanwhile = slowDone.value
            upstream.echo.openGate()
            try await slow.value
            #expect(quick == 20)
            #expect(slowFinishedMeanwhile == 0, "all 20 quick answers came while the 50 slow ones were still waiting")
            #expect(slowDone.value == 50)
        }
    }

    @Test func waitingInsideATableSortComparatorIsAClearErrorNamingThePolicy() async throws {
        try await withFixture { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/sorted")
            #expect(r.status == 500)
            #expect(logs.all.contains { $0.metadata["policy"] == "sorted" && $0.message.contains("http.fetch cannot wait here") })
            #expect(try await send(gateway.baseURL + "/quick").status == 200)
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
