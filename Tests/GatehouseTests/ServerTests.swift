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
                ("POST", "/echo/{+path}", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }, "policies": { "outbound": ["reread"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": [ { "name": "reread", "policyType": "custom-code-outbound", "handler": { "module": "$import(./plugins/reread)" } } ] }"#,
            // Reads the request body after the upstream leg streamed it on: an error, not a crash.
            "plugins/reread.lua": """
            return function(response, request)
              local text, err = request:text()
              response.headers:set('x-reread', text and 'got' or ('error: ' .. tostring(err)))
              return response
            end
            """,
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

    /// A pipelined request with a body (small, large, chunked) behind one without: each is
    /// answered, in order.
    @Test func pipelinedRequestsWithBodiesAreAnsweredInOrder() async throws {
        try await withServer { gateway, _ in
            let client = try RawConnection(port: gateway.port)
            let large = String(repeating: "l", count: 100_000)
            try client.send(
                "GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /echo/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nsmall"
                    + "POST /echo/3 HTTP/1.1\r\nHost: x\r\nContent-Length: \(large.utf8.count)\r\n\r\n\(large)"
                    + "POST /echo/4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n"
                    + "GET /echo/5 HTTP/1.1\r\nHost: x\r\n\r\n")
            let answers = try await RawConnection.run { try (1...5).compactMap { _ in try client.readResponse() } }
            #expect(answers.count == 5)
            let paths = answers.map { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any])?["path"] as? String }
            #expect(paths == ["/echo/1", "/echo/2", "/echo/3", "/echo/4", "/echo/5"], "\(paths)")
        }
    }

    /// A refusal of a pipelined request (here: no Host) never overtakes the answer to the
    /// request before it.
    @Test func aPipelinedRefusalWaitsForTheAnswerBeforeIt() async throws {
        try await withServer { gateway, _ in
            let client = try RawConnection(port: gateway.port)
            try client.send("GET /echo/slow HTTP/1.1\r\nHost: x\r\nx-echo-delay-ms: 300\r\n\r\nGET /echo/bad HTTP/1.1\r\n\r\n")
            let answers = try await RawConnection.run { try (1...2).compactMap { _ in try client.readResponse() } }
            #expect(answers.map(\.status) == [200, 400])
        }
    }

    @Test func aClientThatHalfClosesAfterTwoPipelinedRequestsGetsBothAnswers() async throws {
        try await withServer { gateway, _ in
            let client = try RawConnection(port: gateway.port)
            try client.send("GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/b HTTP/1.1\r\nHost: x\r\n\r\n")
            client.finishSending()
            let answers = try await RawConnection.run { try (1...2).compactMap { _ in try client.readResponse() } }
            #expect(answers.map(\.status) == [200, 200])
        }
    }

    @Test func anHTTP10RequestIsAnsweredInHTTP10AndClosedUnlessItAskedForKeepAlive() async throws {
        try await withServer { gateway, _ in
            let plain = try RawConnection(port: gateway.port)
            try plain.send("GET /echo/old HTTP/1.0\r\nHost: x\r\n\r\n")
            let head = try await RawConnection.run { plain.read(until: "\r\n\r\n") }
            #expect(head.hasPrefix("HTTP/1.0 200"), "\(head)")
            _ = try await RawConnection.run { plain.drain() } // ends: the gateway closed it
            let kept = try RawConnection(port: gateway.port)
            try kept.send("GET /echo/1 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            let first = try await RawConnection.run { try kept.readResponse() }
            #expect(first?.header("connection")?.lowercased() == "keep-alive")
            try kept.send("GET /echo/2 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            let second = try await RawConnection.run { try kept.readResponse() }
            #expect(second?.status == 200, "the connection stayed open")
        }
    }

    /// An outbound policy reading a request body the upstream leg already streamed gets an
    /// error (a second reader of the stream would stop the process).
    @Test func readingAStreamedBodyAgainIsAnErrorNotACrash() async throws {
        try await withServer { gateway, _ in
            let r = try await RawHTTP.send(
                port: gateway.port,
                "POST /echo/s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            #expect(r.status == 200)
            #expect(r.header("x-reread")?.hasPrefix("error:") == true, "\(r.headers)")
            #expect(try await send(gateway.baseURL + "/echo/after").status == 200)
        }
    }
}
