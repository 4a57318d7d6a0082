import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One event loop's upstream connections, by origin. Connections are made on this loop and
/// only serve requests whose task runs on it, so a request and both its connections stay on
/// one thread. Touched only on `loop`.
final class LoopPool: @unchecked Sendable {
    let loop: any EventLoop
    let configuration: EngineConfiguration
    let counters = EngineCounters()
    private let tls: Result<NIOSSLContext, any Error>?
    private var origins: [UpstreamOrigin: OriginPool] = [:]
    private(set) var shuttingDown = false

    init(loop: any EventLoop, configuration: EngineConfiguration, tls: Result<NIOSSLContext, any Error>?) {
        self.loop = loop
        self.configuration = configuration
        self.tls = tls
    }

    func start(_ exchange: Exchange) {
        let origin = exchange.origin
        if let pool = origins[origin] { return pool.start(exchange) }
        let pool = OriginPool(origin: origin, owner: self)
        origins[origin] = pool
        pool.start(exchange)
    }

    /// Opens the channel for `connection`: TCP (an IP literal without a lookup), TLS for
    /// `https` with SNI for names, then NIOHTTP1's client codec and the connection itself.
    func connect(_ connection: UpstreamConnection) -> EventLoopFuture<any Channel> {
        let origin = connection.origin
        var sslContext: NIOSSLContext?
        if origin.tls {
            switch tls {
            case .success(let context): sslContext = context
            case .failure(let error): return loop.makeFailedFuture(error)
            case nil: return loop.makeFailedFuture(UpstreamError.invalidURL)
            }
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [sslContext] channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(
                            context: sslContext, serverHostname: origin.isIPLiteral ? nil : origin.host))
                    }
                    // The head is built from HTTPFields (validated when set) and a checked host.
                    try pipeline.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try pipeline.addHandler(connection)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        if origin.isIPLiteral, let address = try? SocketAddress(ipAddress: origin.host, port: origin.port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: origin.host, port: origin.port)
    }

    func shutdown() {
        shuttingDown = true
        for pool in origins.values { pool.closeAll() }
    }
}
