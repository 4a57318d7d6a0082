import Foundation
import GatehouseTesting
import Testing

/// Hostile or malformed HTTP input over raw sockets: a clear 4xx, and nothing reaches the upstream.
@Suite struct HardeningTests {
    func withFixture(_ body: (Int, RunningUpstream) async throws -> Void) async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in try await body(gateway.port, upstreams["main"]!) }
    }

    @Test func aDeclaredBodyOverTheLimitIs413BeforeAnythingIsForwarded() async throws {
        try await withFixture { port, upstream in
            let r = try await RawHTTP.send(port: port, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n")
            #expect(r.status == 413)
            #expect(r.header("content-type") == "application/problem+json")
            #expect(upstream.requestCount == 0)
        }
    }

    @Test func aChunkedBodyIsCutOffWhenItCrossesTheLimitWhileStreaming() async throws {
        try await withFixture { port, upstream in
            let chunk = String(repeating: "z", count: 30_000)
            let hex = String(chunk.utf8.count, radix: 16)
            var request = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            for _ in 0..<4 { request += "\(hex)\r\n\(chunk)\r\n" }
            request += "0\r\n\r\n"
            let r = try await RawHTTP.send(port: port, request)
            #expect(r.status == 413)
            #expect(r.body.contains("65536 bytes"))
            #expect(upstream.requestCount == 0, "the upstream never received a complete request")
        }
    }

    @Test(arguments: [
        ("conflicting Content-Length and Transfer-Encoding", "POST /hop HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
        ("two different Content-Length values", "POST /hop HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!"),
        ("a Content-Length that is not a number", "POST /hop HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n"),
        ("an invalid header name", "GET /hop HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n"),
        ("a header value with a bare CR", "GET /hop HTTP/1.1\r\nHost: x\r\nX-Evil: a\rb\r\nConnection: close\r\n\r\n"),
    ])
    func ambiguousRequestsAreRefusedAndNeverForwarded(_ label: String, _ request: String) async throws {
        try await withFixture { port, upstream in
            let r = try await RawHTTP.send(port: port, request)
            #expect(r.status == 400, "\(label): \(r.status)")
            #expect(r.header("content-type") == "application/problem+json", "\(label)")
            #expect(r.header("x-request-id") != nil)
            #expect(upstream.requestCount == 0, "\(label) reached the upstream")
        }
    }

    @Test func anOversizedHeaderSectionOrRequestLineIs431() async throws {
        try await withFixture { port, upstream in
            let r = try await RawHTTP.send(port: port, "GET /hop HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 40_000) + "\r\nConnection: close\r\n\r\n")
            #expect(r.status == 431)
            #expect(r.header("content-type") == "application/problem+json")
            let line = try await RawHTTP.send(port: port, "GET /fwd/" + String(repeating: "a", count: 40_000) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(line.status == 431)
            #expect(upstream.requestCount == 0)
        }
    }

    static func guardedFixture(_ settings: String) throws -> ConfigFixture {
        try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static", "options": { "body": "a" } } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": settings,
        ])
    }

    @Test func aRequestThatDripsInTooSlowlyIs408() async throws {
        let fixture = try Self.guardedFixture(#"{ "requestTimeoutSeconds": 1 }"#)
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, _ in
            // The head never completes: the clock runs out whatever the client trickles in.
            let r = try await RawHTTP.send(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\nX-Slow: 1", timeoutSeconds: 5)
            #expect(r.status == 408)
            #expect(r.header("content-type") == "application/problem+json")
            // A prompt client on a fresh connection is served.
            #expect(try await RawHTTP.send(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").body == "a")
        }
    }

    @Test func connectionsBeyondTheCapAre503() async throws {
        let fixture = try Self.guardedFixture(#"{ "maxConnections": 2 }"#)
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, _ in
            // Two connections the gateway has certainly accepted (each was served once).
            var held: [Int32] = []
            for _ in 0..<2 { held.append(try await RawHTTP.openServedConnection(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")) }
            let refused = try await RawHTTP.send(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(refused.status == 503)
            for fd in held { close(fd) }
            // Served again once the gateway has seen the closes (polled: no fixed sleep).
            var status = 0
            for _ in 0..<200 where status != 200 {
                status = try await RawHTTP.send(port: gateway.port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status
                if status != 200 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(status == 200, "still refused after the held connections closed")
        }
    }

    @Test func aSilentClientIsDisconnectedAfterTheIdleTimeout() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static" } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": #"{ "idleTimeoutSeconds": 1 }"#,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, _ in
            let closedAfter = try await RawHTTP.silentConnection(port: gateway.port, waitSeconds: 5)
            let after = try #require(closedAfter, "the connection was still open after 5 s")
            #expect(after < .seconds(4))
        }
    }
}
