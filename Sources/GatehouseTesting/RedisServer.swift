import Foundation

/// A real `redis-server` for tests: the one `scripts/test.sh` (and `.ci/run`) started, named by
/// `GATEHOUSE_TEST_REDIS` (`redis://127.0.0.1:PORT`), or a private one this process starts on a
/// free loopback port. Tests that stop or slow Redis start a private one of their own.
///
/// Without `redis-server` installed, Redis tests are disabled and say why; in CI (`CI=true`)
/// they run anyway and fail, so a missing server can never pass as skipped.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private var process: Process?
    private let extraArguments: [String]
    private let lock = NSLock()

    /// Where `redis-server` is, if installed.
    public static let executable: String? = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Whether Redis tests can run here (always true in CI, where a missing server must fail).
    public static var available: Bool {
        executable != nil || ProcessInfo.processInfo.environment["GATEHOUSE_TEST_REDIS"] != nil || inCI
    }

    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Why Redis tests are skipped here.
    public static let skipReason = "needs redis-server (apt-get install redis-server; scripts/test.sh starts one); never skipped in CI"

    /// The shared server's URL.
    public static func sharedURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_REDIS"], !url.isEmpty { return url }
        return "redis://127.0.0.1:\(try sharedPrivate.get().port)"
    }

    private static let sharedPrivate: Result<RedisServer, any Error> = Result { () throws -> RedisServer in
        let server = try RedisServer.start()
        // Static values are never deinitialised: stop this one when the test process exits.
        sharedPID = server.pid
        atexit { if RedisServer.sharedPID > 0 { Foundation.kill(RedisServer.sharedPID, SIGKILL) } }
        return server
    }
    nonisolated(unsafe) private static var sharedPID: Int32 = 0

    private var pid: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return process?.processIdentifier ?? 0
    }

    /// Starts a private `redis-server` on a free loopback port (no persistence) and waits until
    /// it accepts connections. `arguments` are extra server options; with `tls`, the port
    /// speaks only TLS, with the test CA's server certificate (for `localhost` and 127.0.0.1).
    public static func start(arguments: [String] = [], tls: TestCertificates? = nil) throws -> RedisServer {
        let server = RedisServer(port: try freePort(), arguments: arguments, tls: tls)
        try server.launch()
        return server
    }

    private init(port: Int, arguments: [String], tls: TestCertificates?) {
        self.port = port
        if let tls {
            extraArguments = [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.certificateFile, "--tls-key-file", tls.keyFile,
                "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no",
            ] + arguments
        } else {
            extraArguments = ["--port", String(port)] + arguments
        }
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Stops the server (SIGKILL: as abrupt as a crash).
    public func kill() {
        lock.lock()
        defer { lock.unlock() }
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Starts it again on the same port.
    public func restart() throws {
        kill()
        try launch()
    }

    deinit {
        if let process {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private func launch() throws {
        guard let executable = Self.executable else { throw RedisServerError("redis-server is not installed (\(Self.skipReason))") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
        ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.lock()
        self.process = process
        lock.unlock()
        // Ready when it answers on the port as this very process (another one could have taken
        // the port since it was chosen; then ours exits, and its answer names another pid).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard process.isRunning else { throw RedisServerError("redis-server exited at start (port \(port) taken?)") }
            if extraArguments.contains("--tls-port") {
                // A TLS port only speaks TLS: accepting connections is enough here.
                if Self.canConnect(port) { return }
            } else if let pid = Self.serverPID(port: port) {
                guard pid == process.processIdentifier || pid == -1 else {
                    kill()
                    throw RedisServerError("port \(port) is served by another redis-server (pid \(pid))")
                }
                return
            }
            usleep(20_000)
        }
        kill()
        throw RedisServerError("redis-server did not accept connections on port \(port) within 20 s")
    }

    /// The `process_id` of the Redis answering on `port` (nil: nothing answers yet; -1: it
    /// answers but wants a password first, so it cannot say).
    static func serverPID(port: Int) -> Int32? {
        guard let fd = try? RawHTTP.connectLoopback(port: port, timeoutSeconds: 2) else { return nil }
        defer { close(fd) }
        guard (try? RawHTTP.writeAll(fd, "INFO server\r\n")) != nil else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while received.count < 65536 {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { break }
            received += buffer[0..<n]
            let text = String(decoding: received, as: UTF8.self)
            if text.hasPrefix("-NOAUTH") { return -1 }
            if let range = text.range(of: "process_id:"), let end = text[range.upperBound...].firstIndex(where: \.isNewline) {
                return Int32(text[range.upperBound..<end])
            }
        }
        return nil
    }

    public static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port nothing listens on now (bound to 0 and released).
    public static func freePort() throws -> Int {
        let (fd, port) = try RawHTTP.listenLoopback(backlog: 1)
        close(fd)
        return port
    }
}

public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
