import AsyncHTTPClient
import Foundation
import GatehousePolicies
import GatehouseTesting
import NIOCore
import NIOHTTP1

/// A response as a test sees it.
struct Reply {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    /// Headers the echo upstream received.
    var upstreamHeaders: [String: String] { json["headers"] as? [String: String] ?? [:] }
}

/// A client allowed many connections per host, for tests that need real concurrency
/// (HTTPClient.shared queues beyond 8 connections per host).
let wideClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

/// Sends a request with AsyncHTTPClient (a real client over a real socket).
func send(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil, client: HTTPClient = .shared) async throws -> Reply {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await client.execute(request, timeout: .seconds(30))
    let collected = try await response.body.collect(upTo: 1 << 20)
    return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: collected))
}

/// Starts upstreams and a gateway over `fixture`, runs `body`, and stops everything.
func withGateway(
    _ fixture: ConfigFixture, upstreams names: [String] = ["main"], environment: [String: String] = [:], clock: ServiceClock = .system,
    _ body: (TestGateway, [String: RunningUpstream], LogCapture) async throws -> Void
) async throws {
    var upstreams: [String: RunningUpstream] = [:]
    var env = environment
    for name in names {
        let upstream = try await RunningUpstream.start(name: name)
        upstreams[name] = upstream
        env["UPSTREAM_" + name.uppercased()] = upstream.url
    }
    let logs = LogCapture()
    let gateway = try await TestGateway.start(
        configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], environment: env, logger: logs.logger(), clock: clock)
    do {
        try await body(gateway, upstreams, logs)
    } catch {
        try await gateway.stop()
        for u in upstreams.values { try await u.stop() }
        throw error
    }
    try await gateway.stop()
    for u in upstreams.values { try await u.stop() }
}
