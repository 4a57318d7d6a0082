public import GatehousePolicies
import GatehouseUpstreams
public import Hummingbird
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

    /// Loads the first generation; nothing is served if it does not validate.
    public static func load(
        configDirectory: String, pluginDirectories: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        environment: [String: String]? = nil
    ) async throws(SnapshotError) -> GatewayServer {
        let loops = Array(eventLoopGroup.makeIterator())
        let snapshot = try await Snapshot.load(
            configDirectory: configDirectory, pluginDirectories: pluginDirectories, loops: loops, generation: 1, logger: logger,
            environment: environment)
        for warning in snapshot.config.warnings { logger.warning("\(warning)") }
        return GatewayServer(
            snapshot: snapshot, configDirectory: configDirectory, pluginDirectories: pluginDirectories,
            eventLoopGroup: eventLoopGroup, logger: logger, environment: environment)
    }

    private init(
        snapshot: Snapshot, configDirectory: String, pluginDirectories: [String], eventLoopGroup: any EventLoopGroup,
        logger: Logger, environment: [String: String]?
    ) {
        self.environment = environment
        self.store = SnapshotStore(snapshot)
        self.configDirectory = configDirectory
        self.pluginDirectories = pluginDirectories
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        let settings = snapshot.config.settings
        self.upstream = UpstreamClient(
            eventLoopGroup: eventLoopGroup,
            connectTimeout: .milliseconds(Int64(settings.connectTimeoutMilliseconds)),
            responseTimeout: .milliseconds(Int64(settings.upstreamTimeoutMilliseconds)))
    }

    /// The HTTP server as a `Service`. `onRunning` receives the bound port (useful with port 0).
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let responder = GatewayResponder(
            store: store, pipeline: RequestPipeline(upstream: upstream, logger: logger), logger: logger,
            executors: EventLoopExecutors(group: eventLoopGroup))
        return Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger)
    }

    /// Closes upstream connections; call after the server stopped.
    public func shutdown() async {
        try? await upstream.shutdown()
    }
}
