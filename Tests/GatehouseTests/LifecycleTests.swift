import Foundation
import GatehouseTesting
import Testing

@Suite struct LifecycleTests {
    /// Graceful shutdown (what SIGTERM/SIGINT trigger through the ServiceGroup) lets a request
    /// that is mid-way through a slow upstream call finish.
    @Test func gracefulShutdownDrainsInFlightRequests() async throws {
        let fixture = try PolicyFixture.make()
        defer { fixture.remove() }
        let upstream = try await RunningUpstream.start(name: "main")
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            environment: ["UPSTREAM_MAIN": upstream.url], logger: LogCapture().logger())
        let inFlight = Task { try await send(gateway.baseURL + "/hop", headers: [("x-echo-delay-ms", "600")]) }
        while upstream.requestCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        try await gateway.stop()
        let reply = try await inFlight.value
        #expect(reply.status == 200, "\(reply.status) \(reply.body)")
        #expect(reply.json["upstream"] as? String == "main")
        try await upstream.stop()
    }
}
