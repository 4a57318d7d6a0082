public import GatehousePolicies
import GatehouseCore
public import GatehouseUpstreams
public import ServiceLifecycle
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
    /// Target state of the upstream groups, kept across reloads.
    let groups: UpstreamGroups

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
        let groups = UpstreamGroups(client: upstream, logger: logger)
        let services = RuntimeServices(fetcher: UpstreamFetcher(client: upstream, groups: groups), upstreams: GroupDirectory(groups: groups), clock: clock)
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
            snapshot: snapshot, groups: groups, configDirectory: configDirectory, pluginDirectories: pluginDirectories,
            eventLoopGroup: eventLoopGroup, logger: logger, environment: environment, upstream: upstream, services: services)
    }

    private init(
        snapshot: Snapshot, groups: UpstreamGroups, configDirectory: String, pluginDirectories: [String], eventLoopGroup: any EventLoopGroup,
        logger: Logger, environment: [String: String]?, upstream: UpstreamClient, services: RuntimeServices
    ) {
        self.environment = environment
        self.groups = groups
        self.store = SnapshotStore(snapshot, groups: groups.install(snapshot.config.upstreams, settings: snapshot.config.settings))
        self.configDirectory = configDirectory
        self.pluginDirectories = pluginDirectories
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.upstream = upstream
        self.services = services
    }

    /// The HTTP server as a `Service`. `onRunning` receives the bound port (useful with port 0).
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some Service {
        GatewayHTTPServer(
            host: host, port: port, group: eventLoopGroup,
            responder: GatewayResponder(store: store, pipeline: RequestPipeline(upstream: upstream, logger: logger), logger: logger),
            settings: store.current.config.settings, logger: logger, onRunning: onRunning)
    }

    /// What the upstream engine did so far (connections opened and reused, timers scheduled).
    public func upstreamStats() async -> EngineStats {
        await upstream.engine.stats()
    }

    /// Closes upstream connections; call after the server stopped.
    public func shutdown() async {
        groups.shutdown()
        services.shutdown()
        await upstream.shutdown()
    }
}
