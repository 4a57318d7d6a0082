import GatehouseCore
import HTTPTypes
public import NIOCore
import NIOHTTP1
import NIOSSL

/// Gatehouse's own upstream HTTP/1.1 engine on SwiftNIO: a keep-alive pool per event loop and
/// origin, NIOHTTP1's client codec, swift-nio-ssl for `https`, bodies streamed with
/// backpressure both ways, and deadlines kept by one lazily re-armed timer per connection.
///
/// A request is served by the pool of the loop its task runs on (the client connection's
/// loop, in the gateway), so it never changes threads; a caller on no loop of the group gets
/// one and the exchange hops there.
public final class UpstreamEngine: Sendable {
    public let configuration: EngineConfiguration
    private let group: any EventLoopGroup
    private let pools: [ObjectIdentifier: LoopPool]
    /// Why `https` upstreams cannot be reached (a CA file that would not load), if so.
    public let tlsError: String?

    public init(group: any EventLoopGroup, configuration: EngineConfiguration = EngineConfiguration()) {
        self.configuration = configuration
        self.group = group
        let tls: Result<NIOSSLContext, any Error> = Result {
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            if let caFile = configuration.tls.caFile {
                tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if !configuration.tls.verify { tlsConfiguration.certificateVerification = .none }
            return try NIOSSLContext(configuration: tlsConfiguration)
        }
        if case .failure(let error) = tls { tlsError = "\(error)" } else { tlsError = nil }
        var pools: [ObjectIdentifier: LoopPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopPool(loop: loop, configuration: configuration, tls: tls)
        }
        self.pools = pools
    }

    /// Sends `request` and returns once the response head arrived (with the body when it was
    /// small, streaming otherwise).
    ///
    /// - Parameter responseTimeout: overrides the configured response timeout (and the
    ///   request's own) for this call.
    func execute(_ request: UpstreamClient.Request, responseTimeout: TimeAmount? = nil) async throws -> UpstreamClient.Response {
        guard let address = UpstreamAddress(request.url) else { throw UpstreamError.invalidURL }
        let loop = group.any()
        guard let pool = pools[ObjectIdentifier(loop)] else { throw UpstreamError.shuttingDown }
        let exchange = Exchange(
            loop: loop, origin: address.origin, head: Self.head(for: request, address: address), body: request.body,
            responseTimeout: responseTimeout ?? request.responseTimeout ?? configuration.responseTimeout,
            connectTimeout: request.connectTimeout ?? configuration.connectTimeout, wholeBodyLimit: configuration.wholeBodyLimit)
        if loop.inEventLoop {
            pool.start(exchange)
        } else {
            loop.execute { pool.start(exchange) }
        }
        return try await withTaskCancellationHandler {
            try await exchange.result.futureResult.get()
        } onCancel: {
            loop.execute { exchange.cancel() }
        }
    }

    /// The request head: hop-by-hop fields removed, `Host` from the URL unless one is set, and
    /// the body framed by what it is (never by what the client's headers said).
    static func head(for request: UpstreamClient.Request, address: UpstreamAddress) -> HTTPRequestHead {
        var fields = request.headers
        HopByHop.strip(&fields)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 2)
        var hasHost = false
        for field in fields {
            switch field.name {
            case .contentLength: continue
            case .host: hasHost = true
            default: break
            }
            headers.add(name: field.name.rawName, value: field.value)
        }
        if !hasHost { headers.add(name: "host", value: address.origin.hostHeader) }
        switch request.body {
        case .empty:
            if request.method == .post || request.method == .put || request.method == .patch {
                headers.add(name: "content-length", value: "0")
            }
        case .buffered(let buffer):
            headers.add(name: "content-length", value: String(buffer.readableBytes))
        case .stream(let stream):
            if let length = stream.length {
                headers.add(name: "content-length", value: String(length))
            } else {
                headers.add(name: "transfer-encoding", value: "chunked")
            }
        }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: address.target, headers: headers)
    }

    /// What every loop's pools did so far.
    public func stats() async -> EngineStats {
        var total = EngineStats()
        for pool in pools.values {
            let s = try? await pool.loop.submit { pool.counters.snapshot }.get()
            guard let s else { continue }
            total.connectionsOpened += s.connectionsOpened
            total.connectionsReused += s.connectionsReused
            total.requests += s.requests
            total.timersScheduled += s.timersScheduled
            total.openConnections += s.openConnections
        }
        return total
    }

    /// Closes every pooled connection and refuses new requests.
    public func shutdown() async {
        for pool in pools.values {
            try? await pool.loop.submit { pool.shutdown() }.get()
        }
    }
}
