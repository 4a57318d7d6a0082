import ArgumentParser
import Foundation
import Gatehouse
import GatehouseCore
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the gateway.")

    @OptionGroup var source: SourceOptions

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 8080

    @Flag(help: "Also start the demo upstreams of config/demo.json (default: sandbox on 127.0.0.1:9101, production on 127.0.0.1:9102).")
    var demo = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("admin-port"), help: "Serve the admin endpoint (status, plugins, reload) on this port; off by default.")
    var adminPort: Int?

    @Option(name: .customLong("admin-host"), help: "The admin endpoint's address. Keep it on loopback unless GATEHOUSE_ADMIN_TOKEN is set.")
    var adminHost: String = "127.0.0.1"

    @Flag(name: .customLong("no-watch"), help: "Do not reload on file changes (SIGHUP and the admin endpoint still reload).")
    var noWatch = false

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "gatehouse")
        let server: GatewayServer
        do {
            server = try await GatewayServer.load(configDirectory: source.config, pluginDirectories: source.pluginDirectories, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("gatehouse: the configuration is not valid:\n\(error)\n".utf8))
            throw ExitCode(2)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if demo {
            // config/demo.json says which echo upstreams and data service the demo needs.
            let setup = DemoSetup.load(configDirectory: source.config)
            for upstream in setup.upstreams {
                services.append(.init(service: EchoUpstream(name: upstream.name).application(port: upstream.port)))
            }
            if let data = setup.dataService {
                let environment = ConfigEnvironment.load(dotEnvFile: source.config + "/.env").values
                services.append(.init(service: DemoDataService(directory: data.directory, environment: environment).application(port: data.port)))
            }
        }
        let host = self.host
        services.append(.init(service: server.application(host: host, port: port) { bound in
            logger.notice("gatehouse listening on http://\(host):\(bound)")
        }))
        let reloader = Reloader(server: server)
        services.append(.init(service: ReloadService(
            reloader: reloader, directories: [source.config] + source.pluginDirectories, watch: !noWatch, logger: logger)))
        if let adminPort {
            let token = ProcessInfo.processInfo.environment["GATEHOUSE_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            if token == nil && adminHost != "127.0.0.1" && adminHost != "::1" && adminHost != "localhost" {
                logger.warning("the admin endpoint listens on \(adminHost) without GATEHOUSE_ADMIN_TOKEN: anyone who reaches it can reload")
            }
            let adminHost = self.adminHost
            services.append(.init(service: AdminServer.application(
                reloader: reloader, store: server.store, host: adminHost, port: adminPort, token: token, logger: logger
            ) { bound in logger.notice("admin endpoint on http://\(adminHost):\(bound)") }))
        }
        var configuration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        // In-flight requests get this long to finish; then they are cut (each one is logged).
        let grace = server.store.current.config.settings.shutdownGraceSeconds
        configuration.maximumGracefulShutdownDuration = .seconds(grace)
        // Whatever happens during the graceful shutdown, the process ends soon after it.
        let watchdog = ShutdownWatchdog(delay: .seconds(grace + 10))
        watchdog.watchSignals()
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            logger.warning("requests still running after the \(grace) s grace period were cut", metadata: ["reason": .string("\(error)")])
        }
        await server.shutdown()
        logger.notice("gatehouse stopped")
    }
}
