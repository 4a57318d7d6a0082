public import Gatehouse
public import GatehousePolicies
import Hummingbird
public import Logging
import ServiceLifecycle

/// A gateway serving a config directory on 127.0.0.1 with an ephemeral port, in this process.
public final class TestGateway: Sendable {
    public let port: Int
    public let server: GatewayServer
    public let reloader: Reloader
    /// The admin endpoint's port when started with `admin: true`.
    public let adminPort: Int?
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Loads `configDirectory` and `pluginDirectories` and starts serving.
    /// `environment` is what `$env(...)` sees (the process environment is not used).
    /// `watch` reloads on file changes; `admin` also serves the admin endpoint (with `adminToken`).
    public static func start(
        configDirectory: String, pluginDirectories: [String], environment: [String: String] = [:], logger: Logger,
        watch: Bool = false, admin: Bool = false, adminToken: String? = nil, clock: ServiceClock = .system
    ) async throws -> TestGateway {
        let server = try await GatewayServer.load(
            configDirectory: configDirectory, pluginDirectories: pluginDirectories, logger: logger, environment: environment, clock: clock)
        let reloader = Reloader(server: server)
        let (adminPorts, adminContinuation) = AsyncStream.makeStream(of: Int.self)
        let (port, group, task) = try await runUntilBound(logger: logger, extra: { () -> [any Service] in
            var extra: [any Service] = []
            if watch {
                extra.append(ReloadService(reloader: reloader, directories: [configDirectory] + pluginDirectories, logger: logger))
            }
            if admin {
                extra.append(AdminServer.application(
                    reloader: reloader, store: server.store, host: "127.0.0.1", port: 0, token: adminToken, logger: logger
                ) { port in adminContinuation.yield(port) })
            }
            return extra
        }()) { onRunning in
            server.application(host: "127.0.0.1", port: 0, onRunning: onRunning)
        }
        var adminPort: Int?
        if admin {
            var iterator = adminPorts.makeAsyncIterator()
            adminPort = await iterator.next()
        }
        return TestGateway(port: port, server: server, reloader: reloader, adminPort: adminPort, group: group, task: task)
    }

    private init(port: Int, server: GatewayServer, reloader: Reloader, adminPort: Int?, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.server = server
        self.reloader = reloader
        self.adminPort = adminPort
        self.group = group
        self.task = task
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Graceful shutdown: in-flight requests complete first.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        await server.shutdown()
    }
}

/// A test server (an echo upstream, the data service) on an ephemeral port, in this process.
public final class RunningServer<Server: Sendable>: Sendable {
    public let server: Server
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(server: Server, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.server = server
        self.port = port
        self.group = group
        self.task = task
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    static func quietLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .error
        return logger
    }
}

/// An ``EchoUpstream`` on an ephemeral port.
public typealias RunningUpstream = RunningServer<EchoUpstream>

extension RunningServer where Server == EchoUpstream {
    public static func start(name: String) async throws -> RunningUpstream {
        let echo = EchoUpstream(name: name)
        let (port, group, task) = try await runUntilBound(logger: quietLogger("echo")) { onRunning in
            echo.application(port: 0, onRunning: onRunning)
        }
        return RunningServer(server: echo, port: port, group: group, task: task)
    }

    public var echo: EchoUpstream { server }
    public var requestCount: Int { server.requestCount }
}

/// A ``DemoDataService`` (the examples' config service) on an ephemeral port.
public typealias RunningDataService = RunningServer<DemoDataService>

extension RunningServer where Server == DemoDataService {
    public static func start(directory: String, environment: [String: String]) async throws -> RunningDataService {
        let service = DemoDataService(directory: directory, environment: environment)
        let (port, group, task) = try await runUntilBound(logger: quietLogger("data")) { onRunning in
            service.application(port: 0, onRunning: onRunning)
        }
        return RunningServer(server: service, port: port, group: group, task: task)
    }

    public var service: DemoDataService { server }
    public var requestCount: Int { server.requestCount }
}

/// Runs the application `make` builds in a service group and returns once it listens.
private func runUntilBound<App: Service>(
    logger: Logger, extra: [any Service] = [], _ make: (@escaping @Sendable (Int) async -> Void) -> App
) async throws -> (port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = make { port in continuation.yield(port) }
    var configuration = ServiceGroupConfiguration(services: [app] + extra, logger: logger)
    // A test that leaves a connection busy must not hang the run: shutdown cuts it after this.
    configuration.maximumGracefulShutdownDuration = .seconds(15)
    let group = ServiceGroup(configuration: configuration)
    let task = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw TestHarnessError("the server did not start") }
    return (port, group, task)
}

public struct TestHarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
