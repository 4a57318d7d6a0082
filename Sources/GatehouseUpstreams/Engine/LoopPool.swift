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

    /// Opens a connection to `origin` for `pool`: TCP (an IP literal without a lookup), TLS for
    /// `https` with SNI for names, then NIOHTTP1's client codec and an ``UpstreamConnection``.
    ///
    /// For a name, NIO tries its addresses one after another (Happy Eyeballs) and runs the
    /// initializer once per attempt, so each attempt gets a handler of its own; the pool adopts
    /// the one in the channel that won (the others, never adopted, report nothing).
    func connect(_ origin: UpstreamOrigin, for pool: OriginPool, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        var sslContext: NIOSSLContext?
        if origin.tls {
            switch tls {
            case .success(let context): sslContext = context
            case .failure(let error): return loop.makeFailedFuture(error)
            case nil: return loop.makeFailedFuture(UpstreamError.invalidURL)
            }
        }
        let counters = self.counters
        let configuration = self.configuration
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [sslContext] channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(
                            context: sslContext, serverHostname: origin.isIPLiteral ? nil : origin.host))
                    }
                    // The head is built from HTTPFields (validated when set) and a checked URL.
                    try pipeline.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try pipeline.addHandler(UpstreamConnection(origin: origin, pool: pool, counters: counters, configuration: configuration))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let connected: EventLoopFuture<any Channel>
        if origin.isIPLiteral, let address = try? SocketAddress(ipAddress: origin.host, port: origin.port) {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: origin.host, port: origin.port)
        }
        return connected.flatMapThrowing { channel in
            let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
            connection.adopt()
            return connection
        }
    }

    func shutdown() {
        shuttingDown = true
        for pool in origins.values { pool.closeAll() }
        // Origin pools refer back to this one; connections still closing keep theirs alive.
        origins.removeAll()
    }
}
