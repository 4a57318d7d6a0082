import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One event loop's connection to Redis, shared by every command issued on that loop
/// (pipelined: commands do not wait for each other's replies). Connects on first use, sends
/// `AUTH` and `SELECT` before anything else, and after a failed connect waits out a backoff
/// (50 ms doubling to 2 s) during which commands fail at once instead of queueing behind a
/// dead server. Touched only on `loop`.
final class RedisLoopConnection: @unchecked Sendable {
    let loop: any EventLoop
    private let configuration: RedisConfiguration
    private let tls: Result<NIOSSLContext, any Error>?

    private enum State {
        case idle
        case connecting(EventLoopFuture<RedisChannelHandler>)
        case ready(RedisChannelHandler)
        case backoff(until: NIODeadline, error: String)
        case shutDown
    }

    private var state = State.idle
    private var backoff: TimeAmount = .zero
    static let firstBackoff = TimeAmount.milliseconds(50)
    static let maxBackoff = TimeAmount.seconds(2)

    init(loop: any EventLoop, configuration: RedisConfiguration, tls: Result<NIOSSLContext, any Error>?) {
        self.loop = loop
        self.configuration = configuration
        self.tls = tls
    }

    /// Sends one RESP-encoded command. Call on `loop`.
    func send(_ command: ByteBuffer) -> EventLoopFuture<RedisValue> {
        switch state {
        case .ready(let handler):
            return handler.send(command)
        case .connecting(let connected):
            return connected.flatMap { $0.send(command) }
        case .backoff(let until, let error):
            if NIODeadline.now() < until { return loop.makeFailedFuture(RedisError.unavailable(error)) }
            return connect().flatMap { $0.send(command) }
        case .idle:
            return connect().flatMap { $0.send(command) }
        case .shutDown:
            return loop.makeFailedFuture(RedisError.unavailable("the client is shut down"))
        }
    }

    private func connect() -> EventLoopFuture<RedisChannelHandler> {
        let connected = open().flatMap { handler in self.handshake(handler).map { handler } }
        state = .connecting(connected)
        connected.whenComplete { result in
            guard case .connecting = self.state else {
                // Shut down meanwhile: the new connection is not kept.
                if case .success(let handler) = result { handler.closeChannel() }
                return
            }
            switch result {
            case .success(let handler):
                self.backoff = .zero
                self.state = .ready(handler)
            case .failure(let error):
                self.backoff = self.backoff == .zero ? Self.firstBackoff : min(self.backoff * 2, Self.maxBackoff)
                let text = (error as? RedisError)?.description ?? "\(error)"
                self.state = .backoff(until: .now() + self.backoff, error: text)
            }
        }
        return connected
    }

    /// TCP (and TLS for `rediss://`, with SNI for a name) and the reply handler.
    private func open() -> EventLoopFuture<RedisChannelHandler> {
        var sslContext: NIOSSLContext?
        if configuration.tls {
            switch tls {
            case .success(let context): sslContext = context
            case .failure(let error): return loop.makeFailedFuture(RedisError.unavailable("TLS setup failed: \(error)"))
            case nil: return loop.makeFailedFuture(RedisError.unavailable("TLS is not configured"))
            }
        }
        let configuration = self.configuration
        let loop = self.loop
        let (s, atto) = configuration.connectTimeout.components
        let isIP = (try? SocketAddress(ipAddress: configuration.host, port: configuration.port)) != nil
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [sslContext] channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: isIP ? nil : configuration.host))
                    }
                    try pipeline.addHandler(RedisChannelHandler(loop: loop, commandTimeout: configuration.commandTimeout))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        return bootstrap.connect(host: configuration.host, port: configuration.port)
            .flatMapErrorThrowing { error in throw RedisError.unavailable("cannot connect to \(configuration.endpoint): \(error)") }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self)
                handler.onClose = { [weak self, weak handler] _ in
                    guard let self, let handler, case .ready(let current) = self.state, current === handler else { return }
                    self.state = .idle
                }
                return handler
            }
    }

    /// `AUTH` and `SELECT`, pipelined; an error reply fails the connection (a wrong password is
    /// reported as such, without the password).
    private func handshake(_ handler: RedisChannelHandler) -> EventLoopFuture<Void> {
        var replies: [EventLoopFuture<RedisValue>] = []
        if let password = configuration.password {
            var arguments: [[UInt8]] = [Array("AUTH".utf8)]
            if let user = configuration.username { arguments.append(Array(user.utf8)) }
            arguments.append(Array(password.utf8))
            replies.append(handler.send(RESPFormat.encode(arguments, allocator: ByteBufferAllocator()), flush: false))
        }
        if configuration.database != 0 {
            replies.append(handler.send(RESPFormat.encode(["SELECT", String(configuration.database)].map { Array($0.utf8) }, allocator: ByteBufferAllocator()), flush: false))
        }
        guard !replies.isEmpty else { return loop.makeSucceededVoidFuture() }
        handler.flush()
        return EventLoopFuture.whenAllComplete(replies, on: loop).flatMapThrowing { results in
            for result in results {
                switch result {
                case .success(.error(let message)):
                    handler.closeChannel()
                    throw RedisError.unavailable("\(self.configuration.endpoint) refused the connection setup: \(message)")
                case .failure(let error):
                    handler.closeChannel()
                    throw error
                default: continue
                }
            }
        }
    }

    func shutdown() {
        switch state {
        case .ready(let handler): handler.closeChannel()
        case .connecting(let connected): connected.whenSuccess { $0.closeChannel() }
        default: break
        }
        state = .shutDown
    }
}
