import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// Counts client connections across the server (for `maxConnections`).
final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)
    func open() -> Int { count.add(1, ordering: .relaxed).newValue }
    func close() { count.subtract(1, ordering: .relaxed) }
}

/// Per-connection protections that Hummingbird's HTTP/1 pipeline does not give, answered as
/// problem+json like every other gateway error:
/// - a malformed request (NIO's parser error) → 400, an oversized header section → 431, close;
/// - a request (head and body) not fully received within `requestTimeout` after the connection
///   opened or the previous response ended → 408, close (slow-drip clients);
/// - more than `maxConnections` connections → 503, close.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let requestTimeout: TimeAmount
    private let maxConnections: Int
    private let requestIdHeader: HTTPField.Name
    private let counter: ConnectionCounter
    /// One timer per connection, re-armed only when it fires (no allocation per request).
    private var timer: Scheduled<Void>?
    /// When the current wait for a request began; nil while a request is being handled.
    private var waitingSince: NIODeadline?
    private var counted = false
    private var closing = false

    init(requestTimeout: TimeAmount, maxConnections: Int, requestIdHeader: HTTPField.Name, counter: ConnectionCounter) {
        self.requestTimeout = requestTimeout
        self.requestIdHeader = requestIdHeader
        self.maxConnections = maxConnections
        self.counter = counter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        if counter.open() > maxConnections {
            refuse(context, status: .serviceUnavailable, detail: "The gateway is at its connection limit; try again shortly.")
            return
        }
        waitingSince = .now()
        schedule(context, at: .now() + requestTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if counted {
            counter.close()
            counted = false
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            // The whole request is in; the clock restarts when its response has been sent.
            waitingSince = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), !closing { waitingSince = .now() }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if case .headerOverflow = parserError {
            refuse(context, status: .requestHeaderFieldsTooLarge, detail: "The request's header section is larger than the gateway accepts.")
        } else {
            refuse(context, status: .badRequest, detail: "The request is not valid HTTP/1.1 (\(parserError)).")
        }
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.check(context)
        }
    }

    /// The timer fired: refuse if the current wait is over, else sleep until it would be.
    private func check(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        guard let since = waitingSince else {
            schedule(context, at: .now() + requestTimeout) // a request is being handled
            return
        }
        let due = since + requestTimeout
        if due <= .now() {
            refuse(context, status: .requestTimeout, detail: "The request did not arrive in time.")
        } else {
            schedule(context, at: due)
        }
    }

    /// Answers a problem and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, status: HTTPResponse.Status, detail: String) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        let requestId = RequestID.next()
        let problem = Problem(status: status, type: status == .requestHeaderFieldsTooLarge || status == .badRequest ? Problem.Kind.badRequest : "about:blank", detail: detail)
        let body = ByteBuffer(string: problem.body(instance: "", requestId: requestId))
        var headers = HTTPFields()
        headers[.contentType] = Problem.contentType
        headers[.contentLength] = String(body.readableBytes)
        headers[.connection] = "close"
        headers[requestIdHeader] = requestId
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
