import GatehouseCore
import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to an origin, on one event loop, serving one exchange at
/// a time. It is the last handler of its channel's pipeline (after NIOHTTP1's client codec and,
/// for `https`, swift-nio-ssl), and everything here runs on that channel's loop.
///
/// It goes back to its pool only when the exchange ended cleanly: the whole request sent, the
/// whole response read, and the upstream willing to keep the connection (no `Connection:
/// close`, not HTTP/1.0 without keep-alive). An error, a timeout, an unread body, a refused
/// upload or a cancelled caller closes it instead.
///
/// One ``LazyTimer`` per connection carries every deadline it has (the response head, the
/// silence between body reads, the idle time in the pool), so requests schedule no timers.
final class UpstreamConnection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let origin: UpstreamOrigin
    // Strong: a connection may close after its engine shut down, and still reports to its pool.
    private let pool: OriginPool
    private let counters: EngineCounters
    private let configuration: EngineConfiguration
    private var context: ChannelHandlerContext?
    private(set) var exchange: Exchange?
    private var timer: LazyTimer
    private(set) var isOpen = true
    /// Requests served so far (a second one means the connection was reused).
    private var served = 0
    /// A read the pipeline asked for while the response's consumer was not ready.
    private var readHeld = false
    /// Taken by the pool (the channel won its connect); only then are closes reported to it.
    private var adopted = false

    init(origin: UpstreamOrigin, pool: OriginPool, counters: EngineCounters, configuration: EngineConfiguration) {
        self.origin = origin
        self.pool = pool
        self.counters = counters
        self.configuration = configuration
        self.timer = LazyTimer(horizon: min(configuration.responseTimeout, configuration.idleTimeout))
    }

    private var loop: any EventLoop { pool.loop }

    // MARK: Serving an exchange

    /// Sends `exchange`'s request. The body goes with the head in one flush when it is in
    /// memory; a streamed body is pumped after the head.
    func run(_ exchange: Exchange) {
        guard let context, isOpen else {
            exchange.fail(UpstreamError.closed(ConnectionClosed()))
            return
        }
        self.exchange = exchange
        exchange.connection = self
        served += 1
        counters.requests += 1
        if served > 1 { counters.connectionsReused += 1 }
        armDeadline(exchange.responseTimeout)
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        switch exchange.body {
        case .empty:
            exchange.requestSent = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .buffered(let buffer):
            exchange.requestSent = true
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .stream(let body):
            context.flush()
            let pump = UploadPump(loop: loop, connection: self, exchange: exchange)
            exchange.pump = pump
            pump.start(body)
        }
    }

    /// One chunk of a streamed upload; completes once the socket took it.
    func writeBodyPart(_ chunk: ByteBuffer) -> EventLoopFuture<Void> {
        guard let context, isOpen else { return loop.makeFailedFuture(ConnectionClosed()) }
        // Progress: the response deadline counts from the last byte sent.
        if let exchange { armDeadline(exchange.responseTimeout) }
        let promise = loop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: promise)
        return promise.futureResult
    }

    func writeEnd(of exchange: Exchange) {
        guard let context, isOpen, self.exchange === exchange else { return }
        exchange.requestSent = true
        armDeadline(exchange.responseTimeout)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The upload pump stopped: if the response had already ended, the exchange is over now.
    func uploadStopped(_ exchange: Exchange) {
        guard self.exchange === exchange, exchange.isEnded else { return }
        finish(exchange, reusable: exchange.keepAlive && exchange.requestSent && !exchange.cancelled)
    }

    /// Ends `exchange` with `error` and closes the connection (the request or response is left
    /// half-done, so the connection cannot be reused).
    func abort(_ exchange: Exchange, _ error: any Error) {
        if self.exchange === exchange {
            self.exchange = nil
            exchange.connection = nil
            exchange.fail(error)
            close()
        } else {
            exchange.fail(error)
        }
    }

    /// The consumer of the streamed response wants more.
    func resumeReading() {
        guard readHeld, let context, isOpen else { return }
        readHeld = false
        context.read()
    }

    private func finish(_ exchange: Exchange, reusable: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        exchange.connection = nil
        if reusable && isOpen && exchange.pump == nil && context?.channel.isActive == true {
            armDeadline(configuration.idleTimeout)
            pool.release(self)
        } else {
            close()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        timer.onFire = { [weak self] in self?.timerFired() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: without this the pair would never be freed.
        self.context = nil
        timer.cancel()
    }

    /// The pool takes this connection (its channel won the connect).
    func adopt() {
        adopted = true
    }

    /// Pooled without having served a request (its caller gave up while it connected).
    func becameIdle() {
        armDeadline(configuration.idleTimeout)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else {
            // Bytes on an idle connection: not an answer to anything we asked.
            close()
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            do {
                try exchange.receive(head)
            } catch {
                abort(exchange, error)
                return
            }
            if isOpen { armDeadline(exchange.responseTimeout) }
        case .body(let part):
            exchange.receive(part)
            if isOpen { armDeadline(exchange.responseTimeout) }
        case .end:
            let reusable = exchange.receiveEnd()
            if exchange.pump == nil {
                finish(exchange, reusable: reusable)
            }
            // Otherwise the upload is still going (an early success) or stopping (a refusal):
            // `uploadStopped` finishes the exchange.
        }
    }

    func read(context: ChannelHandlerContext) {
        // Backpressure: a streamed response's consumer that is not ready holds the next read,
        // which stops the upstream's bytes at its socket.
        if let exchange, exchange.paused {
            readHeld = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange {
            // A decoder error is not HTTP; a TLS or socket error is a broken connection.
            exchange.fail(UpstreamError.closed(error))
        }
        close()
    }

    func channelInactive(context: ChannelHandlerContext) {
        markClosed()
        context.fireChannelInactive()
    }

    /// Closes the connection; the pool forgets it.
    func close() {
        guard isOpen else { return }
        markClosed()
        context?.close(promise: nil)
    }

    /// The one place a connection stops being open: its exchange fails, its deadline goes,
    /// and the pool (if it adopted it) forgets it, exactly once.
    private func markClosed() {
        guard isOpen else { return }
        isOpen = false
        timer.cancel()
        if let exchange {
            self.exchange = nil
            exchange.connection = nil
            exchange.fail(UpstreamError.closed(ConnectionClosed()))
        }
        if adopted { pool.closed(self) }
    }

    // MARK: Deadlines

    private func armDeadline(_ timeout: TimeAmount) {
        timer.arm(.now() + timeout, on: loop, stats: counters)
    }

    private func timerFired() {
        guard isOpen, timer.checkFired(on: loop, stats: counters) else { return }
        if let exchange {
            let error: UpstreamError = exchange.awaitingHead ? .responseTimeout : .readTimeout
            abort(exchange, error)
        } else {
            // Idle too long in the pool.
            close()
        }
    }
}
