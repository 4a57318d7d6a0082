import Foundation
import GatehouseTesting
import Testing

/// The upstream engine seen from outside: connections counted at real upstreams, deadlines
/// and backpressure through real sockets, TLS against a private CA.
@Suite struct UpstreamEngineTests {
    /// A gateway with one route, `GET|POST /x` → `url-forward` to `target`, and `settings` as
    /// its gatehouse.json.
    func withForwarder(
        to target: String, settings: String = "{}", extraFiles: [String: String] = [:],
        _ body: (TestGateway) async throws -> Void
    ) async throws {
        var files = [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/x", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(TARGET)" } } }"#),
                ("POST", "/x", #"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(TARGET)" } } }"#),
            ]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": settings,
        ]
        files.merge(extraFiles) { $1 }
        let fixture = try ConfigFixture(files: files)
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            environment: ["TARGET": target], logger: LogCapture().logger())
        do {
            try await body(gateway)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    @Test func aThousandRequestsOnOneClientConnectionUseOneUpstreamConnection() async throws {
        let upstream = try await RunningUpstream.start(name: "pooled")
        defer { Task { try? await upstream.stop() } }
        try await withForwarder(to: upstream.url) { gateway in
            let answers = try await RawHTTP.sendOnOneConnection(
                port: gateway.port, Array(repeating: "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", count: 1_000), timeoutSeconds: 20)
            #expect(answers.count == 1_000)
            #expect(answers.allSatisfy { $0.status == 200 })
            #expect(upstream.echo.connectionCount == 1, "one upstream connection, reused")
            let stats = await gateway.server.upstreamStats()
            #expect(stats.connectionsOpened == 1)
            #expect(stats.connectionsReused == 999)
        }
    }

    @Test func aConnectionTheUpstreamClosesIsNeverReused() async throws {
        // RecordingUpstream answers `Connection: close` and closes: every request needs a new one.
        let upstream = try RecordingUpstream()
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url) { gateway in
            let answers = try await RawHTTP.sendOnOneConnection(
                port: gateway.port, Array(repeating: "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", count: 5))
            #expect(answers.count == 5)
            #expect(answers.allSatisfy { $0.status == 200 && $0.body == "ok" })
            #expect(upstream.received.count == 5, "one upstream connection per request")
            #expect(await gateway.server.upstreamStats().connectionsReused == 0)
        }
    }

    @Test func anHTTP10AnswerWithoutKeepAliveIsNotReused() async throws {
        let upstream = try RecordingUpstream(answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url) { gateway in
            for _ in 0..<3 {
                let r = try await send(gateway.baseURL + "/x")
                #expect(r.status == 200)
            }
            #expect(upstream.received.count == 3)
            #expect(await gateway.server.upstreamStats().connectionsReused == 0)
        }
    }

    @Test func aRequestOutlastingTheResponseTimeoutIs504AndItsConnectionIsClosed() async throws {
        let upstream = try await RunningUpstream.start(name: "slow")
        defer { Task { try? await upstream.stop() } }
        // The timeout is far above what a fast answer takes on a loaded machine, far below the slow one.
        try await withForwarder(to: upstream.url, settings: #"{ "upstreamTimeoutMs": 2000 }"#) { gateway in
            #expect(try await send(gateway.baseURL + "/x").status == 200)
            let slow = try await send(gateway.baseURL + "/x", headers: [("x-echo-delay-ms", "8000")])
            #expect(slow.status == 504)
            #expect(slow.json["type"] as? String == "urn:gatehouse:problem:upstream-timeout")
            #expect(try await send(gateway.baseURL + "/x").status == 200)
            #expect(upstream.echo.connectionCount == 2, "the timed-out connection was not reused")
        }
    }

    /// The deadlines of fast requests move a connection's one timer instead of scheduling one
    /// each: 10,000 requests schedule about one timer per connection, not 10,000.
    @Test func tenThousandFastRequestsScheduleNoTimerEach() async throws {
        let upstream = try await RunningUpstream.start(name: "fast")
        defer { Task { try? await upstream.stop() } }
        try await withForwarder(to: upstream.url) { gateway in
            let request = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await RawHTTP.sendOnOneConnection(port: gateway.port, Array(repeating: request, count: 2_500), timeoutSeconds: 30)
                            .filter { $0.status == 200 }.count
                    }
                }
                var answered = 0
                for try await count in group { answered += count }
                #expect(answered == 10_000)
            }
            let stats = await gateway.server.upstreamStats()
            #expect(stats.requests == 10_000)
            // One timer per connection, plus one re-arm per connection for each 30 s the run
            // took: far below one per request.
            #expect(stats.timersScheduled <= stats.connectionsOpened * 4 + 4, "\(stats)")
        }
    }

    /// A client reading a large answer slowly: the gateway reads the upstream only as fast as
    /// the client takes the bytes, so what is in between stays bounded by socket buffers. The
    /// body is 200 MB because Linux grows a loopback socket's receive buffer up to
    /// `tcp_rmem`'s maximum (32 MB on this machine), so kernel buffers alone can hold tens of
    /// megabytes; without backpressure the upstream would have written all 200 MB.
    @Test func aSlowClientSlowsTheUpstreamInsteadOfFillingTheGatewaysMemory() async throws {
        let size = 200 << 20
        let upstream = try StreamingUpstream(bodyBytes: size)
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url) { gateway in
            let client = try RawConnection(port: gateway.port, timeoutSeconds: 20, receiveBufferBytes: 256 << 10)
            try client.send("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let first = try await RawConnection.run { client.read(atLeast: 1 << 20) }
            #expect(first.count == 1 << 20)
            // The client stops reading. Wait until the upstream's writes stall too.
            var last = -1
            var stable = 0
            while stable < 5 {
                try await Task.sleep(for: .milliseconds(100))
                let now = upstream.bytesWritten
                stable = now == last ? stable + 1 : 0
                last = now
            }
            #expect(last < 100 << 20, "the upstream wrote \(last) bytes while the client had read 1 MB")
            let rest = try await RawConnection.run { client.drain() }
            #expect(first.count + rest > size, "the whole body arrived once the client read on")
            #expect(upstream.bytesWritten == size)
        }
    }

    @Test func anHTTPSUpstreamSignedByAConfiguredCAIsReachedAndItsConnectionReused() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let upstream = try await TLSUpstream(certificates: certificates)
        for host in ["localhost", "127.0.0.1"] {
            try await withForwarder(
                to: "https://\(host):\(upstream.port)", settings: #"{ "upstreamCaFile": "ca.pem" }"#,
                extraFiles: ["config/ca.pem": try String(contentsOfFile: certificates.caFile, encoding: .utf8)]
            ) { gateway in
                for _ in 0..<3 {
                    let r = try await send(gateway.baseURL + "/x")
                    #expect(r.status == 200, "\(host): \(r.body)")
                    #expect(r.body == "ok")
                }
                #expect(await gateway.server.upstreamStats().connectionsOpened == 1)
            }
        }
        await upstream.stop()
    }

    @Test func anHTTPSUpstreamWithAnUntrustedCertificateIsRefused() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let upstream = try await TLSUpstream(certificates: certificates)
        try await withForwarder(to: "https://localhost:\(upstream.port)") { gateway in
            let r = try await send(gateway.baseURL + "/x")
            #expect(r.status == 502)
            #expect(r.json["type"] as? String == "urn:gatehouse:problem:upstream-unavailable")
            #expect(upstream.requests == 0, "nothing was sent over an unverified connection")
        }
        await upstream.stop()
    }

    @Test func aCAFileThatCannotBeReadIsAConfigError() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([]),
            "config/policies.json": #"{ "policies": [] }"#,
            "config/gatehouse.json": #"{ "upstreamCaFile": "missing.pem" }"#,
        ])
        defer { fixture.remove() }
        await #expect(throws: (any Error).self) {
            _ = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger())
        }
    }

    /// `Expect: 100-continue`: the gateway answers `100 Continue` itself, reads the body, and
    /// does not pass the expectation on.
    @Test func anExpectContinueUploadGetsAContinueAndTheUpstreamNoExpectation() async throws {
        let upstream = try await RunningUpstream.start(name: "expect")
        defer { Task { try? await upstream.stop() } }
        try await withForwarder(to: upstream.url) { gateway in
            let client = try RawConnection(port: gateway.port)
            try client.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
            let interim = try await RawConnection.run { client.read(until: "\r\n\r\n") }
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
            try client.send("hello")
            let final = try await RawConnection.run { client.read(until: "\r\n\r\n") }
            #expect(final.hasPrefix("HTTP/1.1 200"), "\(final)")
            #expect(upstream.echo.lastHeaders["expect"] == nil)
            let expectation = try await RawHTTP.send(
                port: gateway.port, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: magic\r\nConnection: close\r\n\r\nhello")
            #expect(expectation.status == 417)
        }
    }

    /// An answer delimited by the close (no length, not chunked) ends its connection: it is
    /// never handed to a request waiting for one (one connection allowed, four requests).
    @Test func aCloseDelimitedAnswerIsNeverReusedForAWaitingRequest() async throws {
        let upstream = try RecordingUpstream(answer: "HTTP/1.1 200 OK\r\n\r\nok")
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url, settings: #"{ "upstreamConnectionsPerLoop": 1 }"#) { gateway in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { try await send(gateway.baseURL + "/x", client: wideClient).status } }
                for try await status in group { #expect(status == 200) }
            }
            #expect(await gateway.server.upstreamStats().connectionsReused == 0)
        }
    }

    /// A URL a policy builds with a space or line break in it is refused, never written onto
    /// the request line (where it would split the request).
    @Test func aFetchURLThatWouldSplitTheRequestLineIsRefused() async throws {
        let upstream = try RecordingUpstream()
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url, extraFiles: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "lua", "module": "$import(./plugins/split)" } }"#)]),
            "plugins/split.lua": "return function()\n  local res, err = http.fetch(env.TARGET .. '/a?u=x y\\r\\nX-Injected: 1')\n  return Response.json({ got = res ~= nil, err = err })\nend\n",
        ]) { gateway in
            let r = try await send(gateway.baseURL + "/x")
            #expect(r.json["got"] as? Bool == false, "\(r.body)")
            #expect(upstream.received.isEmpty, "nothing was sent")
        }
    }

    /// A full-duplex upstream answers while it reads the upload: its answer is handed on at
    /// once, not held until the upload ends (which would wait for each other).
    @Test func aFullDuplexUpstreamsAnswerFlowsWhileTheUploadStillStreams() async throws {
        let upstream = try EchoingUpstream()
        defer { upstream.stop() }
        try await withForwarder(to: upstream.url) { gateway in
            let client = try RawConnection(port: gateway.port, timeoutSeconds: 10)
            try client.send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            // The echo of the first chunk arrives before the client sends anything more.
            let early = try await RawConnection.run { client.read(until: "first") }
            #expect(early.hasPrefix("HTTP/1.1 200"), "\(early)")
            #expect(early.contains("first"))
            try client.send("0\r\n\r\n")
            let rest = try await RawConnection.run { client.read(until: "0\r\n\r\n") }
            #expect(rest.hasSuffix("0\r\n\r\n"), "the echo ends when the upload does: \(rest.debugDescription)")
        }
    }
}
