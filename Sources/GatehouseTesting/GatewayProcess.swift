import Foundation

/// `gatehouse serve` as its own process (the binary built beside the tests), for tests that
/// need several gateways sharing something outside them (one Redis).
public final class GatewayProcess: @unchecked Sendable {
    public let port: Int
    private let process: Process

    /// The `gatehouse` executable built next to the test bundle (or under .build/debug).
    public static func binary() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("gatehouse").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        let fallback = ConfigFixture.repositoryRoot() + "/.build/debug/gatehouse"
        guard FileManager.default.isExecutableFile(atPath: fallback) else { throw RedisServerError("build the gatehouse product first") }
        return fallback
    }

    /// Serves `fixture` on a free port and waits until it accepts connections.
    public static func serve(_ fixture: ConfigFixture, environment: [String: String] = [:]) throws -> GatewayProcess {
        let port = try RedisServer.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = ["serve", "--config", fixture.configDirectory, "--plugins", fixture.pluginDirectory, "--port", "\(port)", "--no-watch"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let gateway = GatewayProcess(port: port, process: process)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if RedisServer.canConnect(port) { return gateway }
            guard process.isRunning else { throw RedisServerError("gatehouse serve exited at start (status \(process.terminationStatus))") }
            usleep(20_000)
        }
        gateway.stop()
        throw RedisServerError("gatehouse serve did not listen on port \(port) within 30 s")
    }

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}
