import Foundation
import GatehouseTesting
import Testing

/// Proxy behaviour that needs exact control of the bytes on the wire.
@Suite struct ForwardingTests {
    @Test func hopByHopHeadersAreStrippedBothWays() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in
            let upstreamHeaders = #"{"X-Up-Hop":"secret","Connection":"X-Up-Hop","Keep-Alive":"timeout=3","X-Up-Kept":"y"}"#
            let request = "GET /hop HTTP/1.1\r\nHost: gw.example\r\nConnection: close, X-Hop-Secret\r\nX-Hop-Secret: 1\r\n"
                + "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\nUpgrade: websocket\r\nX-Kept: yes\r\n"
                + "x-echo-response-headers: \(upstreamHeaders)\r\n\r\n"
            let port = gateway.port
            let response = try await RawHTTP.send(port: port, request)
            #expect(response.status == 200)
            let received = upstreams["main"]!.echo.lastHeaders
            for name in ["x-hop-secret", "keep-alive", "te", "proxy-authorization", "upgrade"] {
                #expect(received[name] == nil, "\(name) must not reach the upstream")
            }
            #expect(received["x-kept"] == "yes")
            #expect(received["x-forwarded-host"] == "gw.example")
            #expect(response.header("x-up-hop") == nil)
            #expect(response.header("keep-alive") == nil)
            #expect(response.header("x-up-kept") == "y")
        }
    }

    @Test func largeBodiesStreamIntactBothWaysAndSmallAnswersKeepTheirLength() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            // 60 KB up (the fixture's request limit is 64 KiB), streamed to the upstream; the
            // answer echoes it plus 400 KB of padding, far above the size the gateway collects
            // whole, so it takes the streaming path with backpressure.
            let payload = String((0..<60_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
            let big = try await send(gateway.baseURL + "/upload", method: .POST, headers: [("x-echo-pad-bytes", "400000")], body: payload)
            #expect(big.status == 200)
            #expect(big.json["body"] as? String == payload)
            #expect((big.json["pad"] as? String)?.utf8.count == 400_000)
            // A small answer is handed on whole, with its length.
            let port = gateway.port
            let small = try await RawHTTP.send(port: port, "GET /hop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(small.status == 200)
            #expect(small.header("content-length") == String(small.body.utf8.count))
            #expect(small.header("transfer-encoding") == nil)
        }
    }

    /// Upstreams often answer before reading an upload (nginx's `return`, an early 401). The
    /// answer must reach the client, and both the client's keep-alive connection and the
    /// upstream connection must stay usable: the gateway finishes sending the body first.
    @Test(arguments: [true, false])
    func uploadsAnsweredBeforeTheyAreReadKeepBothConnectionsUsable(chunked: Bool) async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in
            let body = String(repeating: "u", count: 20_000)
            let framed = chunked
                ? "Transfer-Encoding: chunked\r\n\r\n" + String(10_000, radix: 16) + "\r\n" + body.prefix(10_000) + "\r\n"
                    + String(10_000, radix: 16) + "\r\n" + body.suffix(10_000) + "\r\n0\r\n\r\n"
                : "Content-Length: \(body.utf8.count)\r\n\r\n" + body
            let request = "POST /upload HTTP/1.1\r\nHost: x\r\nx-echo-early: 1\r\n" + framed
            let answers = try await RawHTTP.sendOnOneConnection(port: gateway.port, Array(repeating: request, count: 12))
            #expect(answers.count == 12, "the client connection stayed open")
            #expect(answers.allSatisfy { $0.status == 200 })
            #expect(upstreams["main"]!.echo.connectionCount <= 2, "upstream connections are reused")
            #expect(try await send(gateway.baseURL + "/hop").status == 200)
        }
    }

    @Test func anUploadRefusedEarlyByTheUpstreamGetsTheRefusal() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            let chunk = String(repeating: "r", count: 10_000)
            for _ in 0..<3 {
                let r = try await RawHTTP.send(
                    port: gateway.port,
                    "POST /upload HTTP/1.1\r\nHost: x\r\nx-echo-early: 1\r\nx-echo-status: 401\r\nConnection: close\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n2710\r\n\(chunk)\r\n2710\r\n\(chunk)\r\n0\r\n\r\n")
                #expect(r.status == 401)
            }
            #expect(try await send(gateway.baseURL + "/hop").status == 200)
        }
    }

    @Test func anEarlyRefusalReachesAClientThatIsStillUploading() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            // The client sends half its body and waits for an answer; the upstream refuses at
            // once. The refusal must not wait for the rest of an upload nobody wants.
            let r = try await RawHTTP.sendUnfinished(
                port: gateway.port,
                "POST /upload HTTP/1.1\r\nHost: x\r\nx-echo-early: 1\r\nx-echo-status: 401\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                thenSend: "5\r\nworld\r\n0\r\n\r\n", timeoutSeconds: 3)
            #expect(r.status == 401)
            #expect(try await send(gateway.baseURL + "/hop").status == 200)
        }
    }

    @Test func upstreamDownIs502ProblemNamingNoAddress() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, logs in
            let r = try await send(gateway.baseURL + "/down")
            #expect(r.status == 502)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable")
            #expect(!r.body.contains("127.0.0.1"))
            #expect(logs.all.contains { $0.message == "upstream request failed" })
            #expect(try await send(gateway.baseURL + "/hop").status == 200)
        }
    }

    @Test func slowUpstreamIs504Problem() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/hop", headers: [("x-echo-delay-ms", "4000")])
            #expect(r.status == 504)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:upstream-timeout")
        }
    }

    @Test func malformedPathsAre400BeforeRouting() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in
            let port = gateway.port
            for path in ["/fwd/%2e%2e/secret", "/fwd/a%00b", "/fwd/%zz"] {
                let response = try await RawHTTP.send(port: port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                #expect(response.status == 400, "\(path)")
                #expect(response.header("content-type") == "application/problem+json")
            }
            #expect(upstreams["main"]!.requestCount == 0)
        }
    }

    @Test func aConfiguredRequestIdHeaderIsUsedEverywhere() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": #"{ "requestIdHeader": "X-Correlation-Id" }"#,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/a", headers: [("X-Correlation-Id", "abc-123")])
            #expect(r.headers.first(name: "x-correlation-id") == "abc-123", "a valid incoming id is kept")
            #expect(r.upstreamHeaders["x-correlation-id"] == "abc-123", "and forwarded")
            #expect(r.headers.first(name: "x-request-id") == nil)
            let fresh = try await send(gateway.baseURL + "/a", headers: [("X-Correlation-Id", "not valid!")])
            #expect(fresh.headers.first(name: "x-correlation-id").map { $0 != "not valid!" } == true, "an invalid one is replaced")
            let malformed = try await RawHTTP.send(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n")
            #expect(malformed.status == 400)
            #expect(malformed.header("x-correlation-id") != nil, "errors from the connection guard carry it too")
        }
    }
}
