import NIOCore
import NIOPosix
import NIOSSL

/// One event loop's connection to Redis, shared by every command issued on that loop
/// (pipelined: commands do not wait for each other's replies). Touched only on `loop`.
///
/// - Connects on first use and is ready only once Redis has answered the handshake (`AUTH`
///   and `SELECT` when the URL asks for them, then `PING`), so a server that accepts TCP but
///   never speaks (or a TLS peer that refuses us) counts as a failed connect.
/// - Commands issued while it connects wait, each no longer than the command timeout (one
///   scheduled task for the oldest waiting command, as for commands in flight).
/// - A failed connect, and a connection lost or timed out, start a backoff (50 ms doubling to
///   2 s; reset by a successful handshake) during which commands fail at once instead of
///   queueing behind a dead or overloaded server.
final class RedisLoopConnection: @unchecked Sendable {
    let loop: any EventLoop
    private let configuration: RedisConfiguration
    private let tls: Result<NIOSSLContext, any Error>?

    private enum State {
        case idle
        case connecting
        case ready(RedisChannelHandler)
        case backoff(until: NIODeadline, error: String)
        case shutDown
    }

    private struct Waiting {
        let command: ByteBuffer
        let promise: EventLoopPromise<RedisValue>
        let deadline: NIODeadline
    }

    private var state = State.idle
    private var backoff: TimeAmount = .zero
    private var waiting = CircularBuffer<Waiting>()
    private var waitTimer: Scheduled<Void>?
    private let commandTimeout: TimeAmount
    static let firstBackoff = TimeAmount.milliseconds(50)
    static let maxBackoff = TimeAmount.seconds(2)

    init(loop: any EventLoop, configuration: RedisConfiguration, tls: Result<NIOSSLContext, any Error>?) {
        self.loop = loop
        self.configuration = configuration
        self.tls = tls
        commandTimeout = TimeAmount(configuration.commandTimeout)
    }

    /// Sends one RESP-encoded command. Call on `loop`.
    func send(_ command: ByteBuffer) -> EventLoopFuture<RedisValue> {
        loop.preconditionInEventLoop()
        switch state {
        case .ready(let handler):
            return handler.send(command)
        case .connecting:
            return wait(command)
        case .backoff(let until, let error):
            if NIODeadline.now() < until { return loop.makeFailedFuture(RedisError.unavailable(error)) }
            connect()
            return wait(command)
        case .idle:
            connect()
            return wait(command)
        case .shutDown:
            return loop.makeFailedFuture(RedisError.unavailable("the client is shut down"))
        }
    }

    private func wait(_ command: ByteBuffer) -> EventLoopFuture<RedisValue> {
        let promise = loop.makePromise(of: RedisValue.self)
        let deadline = NIODeadline.now() + commandTimeout
        waiting.append(Waiting(command: command, promise: promise, deadline: deadline))
        if waitTimer == nil { armWaitTimer(deadline) }
        return promise.futureResult
    }

    /// Fails waiting commands whose deadline passed (FIFO, so the first is the oldest).
    private func armWaitTimer(_ deadline: NIODeadline) {
        waitTimer = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
            waitTimer = nil
            let now = NIODeadline.now()
            while let first = waiting.first, first.deadline <= now {
                waiting.removeFirst().promise.fail(RedisError.timedOut)
            }
            if let next = waiting.first { armWaitTimer(next.deadline) }
        }
    }

    private func connect() {
        state = .connecting
        open().flatMap { handler in self.handshake(handler).map { handler } }.whenComplete { result in
            guard case .connecting = self.state else {
                // Shut down meanwhile: the new connection is not kept.
                if case .success(let handler) = result { handler.closeChannel() }
                return
            }
            switch result {
            case .success(let handler):
                self.backoff = .zero
                self.state = .ready(handler)
                let queued = self.waiting
                self.waiting.removeAll()
                self.waitTimer?.cancel()
                self.waitTimer = nil
                for command in queued {
                    handler.send(command.command, deadline: command.deadline).cascade(to: command.promise)
                }
            case .failure(let error):
                let text: String
                switch error as? RedisError {
                case .unavailable(let why)?: text = why
                case let other?: text = other.description
                case nil: text = "\(error)"
                }
                self.enterBackoff(text)
                let queued = self.waiting
                self.waiting.removeAll()
                self.waitTimer?.cancel()
                self.waitTimer = nil
                for command in queued { command.promise.fail(RedisError.unavailable(text)) }
            }
        }
    }

    private func enterBackoff(_ error: String) {
        backoff = backoff == .zero ? Self.firstBackoff : min(backoff * 2, Self.maxBackoff)
        state = .backoff(until: .now() + backoff, error: error)
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
        let isIP = (try? SocketAddress(ipAddress: configuration.host, port: configuration.port)) != nil
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
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
                handler.onClose = { [weak self, weak handler] error in
                    // A connection lost after it was ready: back off before the next one.
                    guard let self, let handler, case .ready(let current) = self.state, current === handler else { return }
                    self.enterBackoff(error.description)
                }
                return handler
            }
    }

    /// `AUTH`, `SELECT` and `PING`, pipelined: ready only when Redis answered all of them; an
    /// error reply fails the connection (a wrong password is reported as such, without it).
    private func handshake(_ handler: RedisChannelHandler) -> EventLoopFuture<Void> {
        var commands: [[String]] = []
        if let password = configuration.password {
            commands.append(["AUTH"] + (configuration.username.map { [$0] } ?? []) + [password])
        }
        if configuration.database != 0 { commands.append(["SELECT", String(configuration.database)]) }
        commands.append(["PING"])
        let replies = commands.map { handler.send(RESPFormat.encode($0.map { Array($0.utf8) }, allocator: ByteBufferAllocator()), flush: false) }
        handler.flush()
        let endpoint = configuration.endpoint
        return EventLoopFuture.whenAllComplete(replies, on: loop).flatMapThrowing { results in
            for result in results {
                switch result {
                case .success(.error(let message)):
                    handler.closeChannel()
                    throw RedisError.unavailable("\(endpoint) refused the connection setup: \(message)")
                case .failure(let error):
                    handler.closeChannel()
                    throw error
                case .success:
                    continue
                }
            }
        }
    }

    func shutdown() {
        if case .ready(let handler) = state { handler.closeChannel() }
        state = .shutDown
        let queued = waiting
        waiting.removeAll()
        waitTimer?.cancel()
        waitTimer = nil
        for command in queued { command.promise.fail(RedisError.unavailable("the client is shut down")) }
    }
}

extension TimeAmount {
    /// A Duration as a TimeAmount, saturating instead of overflowing.
    init(_ duration: Duration) {
        let (s, atto) = duration.components
        let (nanos, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(overflow ? .max / 2 : nanos + atto / 1_000_000_000)
    }
}
