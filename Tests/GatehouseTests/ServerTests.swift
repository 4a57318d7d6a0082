import Foundation
import GatehouseTesting
import Testing

/// The gateway's own HTTP/1.1 server (GatewayConnection) through real sockets: pipelining,
/// half-close, and small bodies read before the request starts.
@Suite struct ServerTests {
    func withServer(_ body: (TestGateway, RunningUpstream) async throws -> Void) async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/echo/{+path}", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } } }"#),
                ("POST", "/read", #"{ "handler": { "type": "lua", "module": "$import(./plugins/read)" } }"#),
            ]),
            "config/policies.json": #"{ "policies": [] }"#,
            // Reads the body inside a coroutine of its own, where no I/O wait is possible: it
            // works only when the body is already in memory.
            "plugins/read.lua": """
            return function(request)
              local ok, text = pcall(coroutine.wrap(function() return request:text() end))
              return Response.json({ ok = ok, size = ok and #text or 0 })
            end
            """,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in try await body(gateway, upstreams["main"]!) }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderOnOneConnection() async throws {
        try await withServer { gateway, upstream in
            let client = try RawConnection(port: gateway.port)
            // Three requests in one write, before any answer.
            try client.send((1...3).map { "GET /echo/\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            let answers = try await RawConnection.run { try (1...3).compactMap { _ in try client.readResponse() } }
            #expect(answers.count == 3)
            let paths = answers.map { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any])?["path"] as? String }
            #expect(paths == ["/echo/1", "/echo/2", "/echo/3"], "\(paths)")
        }
    }

    @Test func aClientThatHalfClosesAfterItsRequestStillGetsTheAnswer() async throws {
        try await withServer { gateway, _ in
            let client = try RawConnection(port: gateway.port)
            try client.send("GET /echo/half HTTP/1.1\r\nHost: x\r\n\r\n")
            client.finishSending()
            let answer = try await RawConnection.run { try client.readResponse() }
            #expect(answer?.status == 200)
            #expect(try await RawConnection.run { client.drain() } == 0, "then the gateway closes")
        }
    }

    /// A small declared body is in memory when the request starts (a policy reads it without
    /// waiting, even where waiting is impossible); a large one still streams.
    @Test func aSmallBodyIsReadBeforeTheRequestStartsAndALargeOneStreams() async throws {
        try await withServer { gateway, _ in
            for (size, inMemory) in [(1_000, true), (200_000, false)] {
                let r = try await send(gateway.baseURL + "/read", method: .POST, body: String(repeating: "b", count: size))
                #expect(r.status == 200)
                #expect(r.json["ok"] as? Bool == inMemory, "\(size) bytes: \(r.body)")
                if inMemory { #expect(r.json["size"] as? Int == size) }
            }
        }
    }
}
