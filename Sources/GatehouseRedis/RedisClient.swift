import Atomics
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL

/// The gateway's Redis client: one pipelined connection per event loop (a command goes out on
/// the loop it is issued from, so a request's Redis traffic stays on its thread), RESP by
/// hiredis' reader and formatter, connect and command timeouts, reconnection with backoff,
/// `AUTH`, `SELECT` and TLS (`rediss://`).
///
/// Reachability is tracked across all loops and logged once per transition, never per command.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let connections: [ObjectIdentifier: RedisLoopConnection]
    private let loops: [any EventLoop]
    private let cursor = ManagedAtomic<Int>(0)
    private let health = RedisHealth()
    private let logger: Logger

    public init(configuration: RedisConfiguration, loops: [any EventLoop], logger: Logger) {
        precondition(!loops.isEmpty, "RedisClient needs at least one event loop")
        self.configuration = configuration
        self.loops = loops
        self.logger = logger
        var tls: Result<NIOSSLContext, any Error>?
        if configuration.tls {
            tls = Result {
                var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
                if let caFile = configuration.caFile {
                    tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                }
                if !configuration.tlsVerify { tlsConfiguration.certificateVerification = .none }
                return try NIOSSLContext(configuration: tlsConfiguration)
            }
        }
        var connections: [ObjectIdentifier: RedisLoopConnection] = [:]
        for loop in loops {
            connections[ObjectIdentifier(loop)] = RedisLoopConnection(loop: loop, configuration: configuration, tls: tls)
        }
        self.connections = connections
    }

    /// False from a failed command until commands have succeeded for a quiet period
    /// (``RedisHealth``).
    public var isReachable: Bool { !health.isDown }

    /// Sends one command (`["SET", key, value, "PX", "1000"]`) and returns its reply. An error
    /// reply is returned as ``RedisValue/error(_:)``, not thrown: only a store that could not
    /// answer throws.
    public func send(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await send(bytes: arguments.map { Array($0.utf8) })
    }

    /// ``send(_:)`` with binary-safe arguments.
    public func send(bytes arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        let command = RESPFormat.encode(arguments, allocator: ByteBufferAllocator())
        guard command.readableBytes > 0 else { throw .protocolError("the command could not be encoded") }
        let connection = pickConnection()
        let reply: EventLoopFuture<RedisValue>
        if connection.loop.inEventLoop {
            reply = connection.send(command)
        } else {
            reply = connection.loop.flatSubmit { connection.send(command) }
        }
        do {
            let value = try await reply.get()
            if health.succeeded() {
                logger.notice("Redis reachable again", metadata: ["redis": .string(configuration.endpoint)])
            }
            return value
        } catch {
            let failure = error as? RedisError ?? .unavailable("\(error)")
            if health.failed() {
                logger.error("Redis unreachable: \(failure)", metadata: ["redis": .string(configuration.endpoint)])
            }
            throw failure
        }
    }

    /// Runs a server-side script by `EVALSHA` (its digest: the body is sent once per server),
    /// falling back to `EVAL`, which also caches it, when Redis answers `NOSCRIPT` (after a
    /// restart or `SCRIPT FLUSH`).
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws(RedisError) -> RedisValue {
        let rest = [String(keys.count)] + keys + arguments
        let reply = try await send(["EVALSHA", script.sha1] + rest)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            return try await send(["EVAL", script.source] + rest)
        }
        return reply
    }

    /// Closes every connection; later commands fail with ``RedisError/unavailable(_:)``.
    public func shutdown() {
        for connection in connections.values {
            connection.loop.execute { connection.shutdown() }
        }
    }

    /// The connection of the loop the caller runs on, else the next one in turn.
    private func pickConnection() -> RedisLoopConnection {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let connection = connections[ObjectIdentifier(current)] {
            return connection
        }
        let index = cursor.loadThenWrappingIncrement(ordering: .relaxed) % loops.count
        return connections[ObjectIdentifier(loops[index])]!
    }
}
