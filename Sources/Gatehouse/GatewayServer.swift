public import GatehousePolicies
import GatehouseCore
public import GatehouseUpstreams
public import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
public import NIOPosix

/// The assembled gateway: the current snapshot, the upstream client and the HTTP server.
public final class GatewayServer: Sendable {
    public let store: SnapshotStore
    public let configDirectory: String
    public let pluginDirectories: [String]
    let upstream: UpstreamClient
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// What `$env(...)` sees on reloads too (nil: the process environment).
    let environment: [String: String]?
    /// Caches, loaders and the fetch client: one set per server, kept across reloads.
    let services: RuntimeServices

    /// Loads the first generation; nothing is served if it does not validate.
    public static func load(
        configDirectory: String, pluginDirectories: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        environment: [String: String]? = nil, clock: ServiceClock = .system
    ) async throws(SnapshotError) -> GatewayServer {
        let loops = Array(eventLoopGroup.makeIterator())
        // Timeouts come from the configuration: read it first (errors surface in the full load below).
        let settings = (try? GatewayConfig.load(directory: configDirectory, processEnvironment: environment).settings) ?? GatewaySettings()
        let upstream = UpstreamClient(eventLoopGroup: eventLoopGroup, configuration: EngineConfiguration(settings))
        if let tlsError = upstream.engine.tlsError {
            logger.error("https upstreams cannot be reached: the TLS configuration failed", metadata: ["error": .string(tlsError)])
        }
        let services = RuntimeServices(fetcher: UpstreamFetcher(client: upstream), clock: clock)
        let snapshot: Snapshot
        do {
            snapshot = try await Snapshot.load(
                configDirectory: configDirectory, pluginDirectories: pluginDirectories, loops: loops, generation: 1, logger: logger,
                environment: environment, services: services)
        } catch {
            await upstream.shutdown()
            throw error
        }
        for warning in snapshot.config.warnings { logger.warning("\(warning)") }
        return GatewayServer(
            snapshot: snapshot, configDirectory: configDirectory, pluginDirectories: pluginDirectories,
            eventLoopGroup: eventLoopGroup, logger: logger, environment: environment, upstream: upstream, services: services)
    }

    private init(
        snapshot: Snapshot, configDirectory: String, pluginDirectories: [String], eventLoopGroup: any EventLoopGroup,
        logger: Logger, environment: [String: String]?, upstream: UpstreamClient, services: RuntimeServices
    ) {
        self.environment = environment
        self.store = SnapshotStore(snapshot)
        self.configDirectory = configDirectory
        self.pluginDirectories = pluginDirectories
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.upstream = upstream
        self.services = services
    }

    /// The HTTP server as a `Service`. `onRunning` receives the bound port (useful with port 0).
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let executors = EventLoopExecutors(group: eventLoopGroup)
        let responder = GatewayResponder(store: store, pipeline: RequestPipeline(upstream: upstream, logger: logger), logger: logger)
        let settings = store.current.config.settings
        let counter = ConnectionCounter()
        let requestTimeout = TimeAmount.seconds(Int64(settings.requestTimeoutSeconds))
        let maxConnections = settings.maxConnections
        let maxRequestLineBytes = settings.maxRequestLineBytes
        let idHeader = settings.requestIdHeader
        var decoder = HTTP1Channel.Configuration.DecoderConfiguration()
        decoder.maxHeaderListSize = settings.maxHeaderBytes
        decoder.maxHeaderFieldSize = settings.maxHeaderBytes
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(
                requestTimeout: requestTimeout, maxConnections: maxConnections, maxRequestLineBytes: maxRequestLineBytes,
                maxRequestBodyBytes: settings.maxRequestBodyBytes, requestIdHeader: idHeader, counter: counter)],
            idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds)),
            httpDecoderConfiguration: decoder)
        return Application(
            responder: responder,
            server: HTTPServerBuilder { respond in LoopPinnedChannel(base: HTTP1Channel(responder: respond, configuration: http1), executors: executors) },
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger)
    }

    /// What the upstream engine did so far (connections opened and reused, timers scheduled).
    public func upstreamStats() async -> EngineStats {
        await upstream.engine.stats()
    }

    /// Closes upstream connections; call after the server stopped.
    public func shutdown() async {
        await upstream.shutdown()
    }
}
