import Foundation
import GatehouseTesting
import Testing

/// Upstreams that misbehave on purpose: the client gets a 502 problem naming no address (or, when
/// the head of a streamed response was already sent, a cut connection), and the gateway keeps
/// serving.
@Suite struct UpstreamFaultTests {
    func withFaultyUpstream(_ behaviour: BadUpstream.Behaviour, _ body: (TestGateway, BadUpstream) async throws -> Void) async throws {
        let bad = try BadUpstream(behaviour)
        defer { bad.stop() }
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/fault", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(BAD)" } } }"#),
                ("POST", "/fault", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(BAD)" } } }"#),
                ("PUT", "/fault", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(BAD)" } } }"#),
                ("GET", "/ok", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } } }"#),
            ]),
            "config/policies.json": #"{ "policies": [] }"#,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture, environment: ["BAD": bad.url]) { gateway, _, _ in try await body(gateway, bad) }
    }

    @Test(arguments: [BadUpstream.Behaviour.garbage, .closeWithoutAnswer])
    func aBrokenAnswerIs502AndTheGatewayKeepsServing(_ behaviour: BadUpstream.Behaviour) async throws {
        try await withFaultyUpstream(behaviour) { gateway, bad in
            for _ in 0..<3 {
                let r = try await send(gateway.baseURL + "/fault")
                #expect(r.status == 502)
                #expect(r.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable")
                #expect(!r.body.contains("127.0.0.1"))
            }
            #expect(bad.connections >= 3, "every attempt reached the faulty upstream")
            #expect(try await send(gateway.baseURL + "/ok").status == 200)
        }
    }

    @Test func idempotentRequestsAreRetriedOnceAndOthersNever() async throws {
        try await withFaultyUpstream(.closeWithoutAnswer) { gateway, bad in
            let get = try await send(gateway.baseURL + "/fault")
            #expect(get.status == 502)
            #expect(bad.connections == 2, "GET: one retry")
            let post = try await send(gateway.baseURL + "/fault", method: .POST, body: "pay once")
            #expect(post.status == 502)
            #expect(bad.connections == 3, "POST: no retry")
        }
    }

    @Test func anUpstreamFailingWhileTheClientBodyStillArrivesIs502AndTheGatewayKeepsServing() async throws {
        // The gateway streams the client's body upstream while it arrives. When the upstream
        // fails first, the gateway must stop reading that body before answering, because the
        // server then reads (discards) the rest of it: two readers of one stream would crash.
        try await withFaultyUpstream(.closeWithoutAnswer) { gateway, _ in
            for _ in 0..<3 {
                let r = try await RawHTTP.sendUnfinished(
                    port: gateway.port,
                    "POST /fault HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                    thenSend: "5\r\nworld\r\n0\r\n\r\n")
                #expect(r.status == 502)
            }
            #expect(try await send(gateway.baseURL + "/ok").status == 200)
        }
    }

    /// An upstream that answers before it read the upload (nginx's `return`): the gateway
    /// still sends the whole body, so the upstream connection can be reused and the client's
    /// keep-alive connection stays open. Small declared bodies are buffered first; large and
    /// chunked ones stream.
    @Test(arguments: ["small", "large", "chunked"])
    func anAnswerBeforeTheUploadWasReadLeavesBothConnectionsReusable(_ kind: String) async throws {
        try await withFaultyUpstream(.answersBeforeReadingBody) { gateway, bad in
            let size = kind == "small" ? 2_000 : 100_000
            let body = String(repeating: "b", count: size)
            let framed = kind == "chunked"
                ? "Transfer-Encoding: chunked\r\n\r\n" + String(size, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
                : "Content-Length: \(size)\r\n\r\n" + body
            let request = "POST /fault HTTP/1.1\r\nHost: x\r\n" + framed
            let answers = try await RawHTTP.sendOnOneConnection(port: gateway.port, Array(repeating: request, count: 10), timeoutSeconds: 5)
            #expect(answers.count == 10, "the client connection stayed open")
            #expect(answers.allSatisfy { $0.status == 200 && $0.body == "ok" })
            #expect(bad.connections <= 2, "the upstream connection is reused, not left half-sent")
        }
    }

    /// A refusal whose end arrives after the client library stopped expecting anything but the
    /// rest of the upload: AsyncHTTPClient holds the end back until an upload it paused ends,
    /// which is never. The gateway settles the answer itself (here after a second without
    /// data, the body being unsized) instead of waiting forever.
    @Test func aRefusalWhileTheUploadStreamsIsAnsweredNotHeldForever() async throws {
        try await withFaultyUpstream(.refusesUploadAfterHead) { gateway, _ in
            let started = ContinuousClock.now
            let r = try await RawHTTP.sendUnfinished(
                port: gateway.port,
                "POST /fault HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                thenSend: "0\r\n\r\n", timeoutSeconds: 5)
            #expect(r.status == 401)
            #expect(r.body == "no")
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test func aSmallBodyCutShortIsA502BecauseNothingWasSentYet() async throws {
        // Small responses with a declared length are collected before the head goes on, so a
        // cut is still reported honestly instead of as a 200 with a short body.
        try await withFaultyUpstream(.truncatedBody) { gateway, _ in
            let r = try await send(gateway.baseURL + "/fault")
            #expect(r.status == 502)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable")
            #expect(try await send(gateway.baseURL + "/ok").status == 200)
        }
    }

    @Test func aSmallDeclaredBodyIsReadFirstSoAnIdempotentUploadCanBeRetried() async throws {
        try await withFaultyUpstream(.closeWithoutAnswer) { gateway, bad in
            let small = try await RawHTTP.send(
                port: gateway.port, "PUT /fault HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")
            #expect(small.status == 502)
            #expect(bad.connections == 2, "a buffered body can be sent again")
            let chunked = try await RawHTTP.send(
                port: gateway.port,
                "PUT /fault HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            #expect(chunked.status == 502)
            #expect(bad.connections == 3, "a streamed body is sent once")
        }
    }

    @Test func aLargeBodyCutShortAfterTheHeadEndsTheClientConnectionNotTheGateway() async throws {
        try await withFaultyUpstream(.truncatedLargeBody) { gateway, _ in
            let port = gateway.port
            let r = try await RawHTTP.send(port: port, "GET /fault HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeoutSeconds: 5)
            #expect(r.status == 200, "the head was forwarded")
            #expect(r.body.utf8.count < 1000, "the client sees the cut, not a made-up body")
            let healthy = try await send(gateway.baseURL + "/ok")
            #expect(healthy.status == 200)
        }
    }
}
