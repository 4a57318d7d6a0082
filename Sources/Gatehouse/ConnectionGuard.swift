import GatehouseCore
import GatehouseUpstreams
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
/// - a request line longer than `maxRequestLineBytes` → 414; no `Host`, or more than one → 400
///   (RFC 9112 §3.2), close;
/// - a request whose body ends early (the connection closed or half-closed, or a malformed
///   chunk) fails its body stream with ``RequestBodyIncomplete``, so nothing reads it as whole;
/// - a request (head and body) not fully received within `requestTimeout` after the connection
///   opened or the previous response ended → 408, close (slow-drip clients);
/// - more than `maxConnections` connections → 503, close;
/// - `Expect: 100-continue` is answered here with `100 Continue` (unless the declared body is
///   over the limit, which the gateway refuses with 413 unread), and the field is not passed
///   on: the gateway reads the body itself, so the upstream is never asked to wait for it. Any
///   other expectation → 417 (RFC 9110 §10.1.1).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let requestTimeout: TimeAmount
    private let maxConnections: Int
    private let maxRequestLineBytes: Int
    private let maxRequestBodyBytes: Int
    private let requestIdHeader: HTTPField.Name
    private let counter: ConnectionCounter
    /// One timer per connection, re-armed only when it fires (no allocation per request).
    private var timer: Scheduled<Void>?
    /// When the current wait for a request began; nil while a request is being handled.
    private var waitingSince: NIODeadline?
    private var counted = false
    private var closing = false
    /// A request's head has been passed on and its end has not arrived yet.
    private var inRequest = false
    /// The path of the request being received, for the `instance` of a problem about it.
    private var requestPath: String?
    /// Requests passed on whose answer has not ended yet (more than one when pipelined).
    private var answersOwed = 0
    /// Answers owed to requests before the one being received (which a refusal is about).
    private var earlierAnswersOwed: Int { answersOwed - (inRequest ? 1 : 0) }
    /// A refusal that waits for the answers owed: a pipelined request's problem must not
    /// overtake the answer to the one before it.
    private var deferredRefusal: (status: HTTPResponse.Status, detail: String)?

    init(
        requestTimeout: TimeAmount, maxConnections: Int, maxRequestLineBytes: Int, maxRequestBodyBytes: Int,
        requestIdHeader: HTTPField.Name, counter: ConnectionCounter
    ) {
        self.requestTimeout = requestTimeout
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxRequestBodyBytes = maxRequestBodyBytes
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
        // Once refused, nothing more of this connection reaches the gateway.
        guard !closing, deferredRefusal == nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let request):
            requestPath = request.path // the target; its query is cut off only if a problem needs it
            if let refusal = Self.refusal(of: request, maxRequestLineBytes: maxRequestLineBytes) {
                refuse(context, status: refusal.status, detail: refusal.detail)
                return
            }
            inRequest = true
            let idle = answersOwed == 0
            answersOwed += 1
            if let expectation = request.headerFields[.expect] {
                guard expectation.lowercased() == "100-continue" else {
                    refuse(context, status: .expectationFailed, detail: "The gateway cannot meet the expectation '\(expectation)'.")
                    return
                }
                var request = request
                request.headerFields[.expect] = nil
                let length = request.headerFields[.contentLength].flatMap { Int($0) }
                let bodyComing = (length ?? 0) > 0 || request.headerFields[.transferEncoding] != nil
                // Only when no earlier answer is still being written (an interim head there
                // would land inside it); the client then sends its body after its own wait.
                if bodyComing && (length ?? 0) <= maxRequestBodyBytes && idle {
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
                }
                context.fireChannelRead(wrapInboundOut(.head(request)))
                return
            }
        case .body:
            break
        case .end:
            inRequest = false
            // The whole request is in; the clock restarts when its response has been sent.
            waitingSince = nil
        }
        context.fireChannelRead(data)
    }

    /// Why a request head is refused before the gateway sees it, if it is.
    static func refusal(of request: HTTPRequest, maxRequestLineBytes: Int) -> (status: HTTPResponse.Status, detail: String)? {
        // "METHOD SP target SP HTTP/1.1"
        let lineBytes = request.method.rawValue.utf8.count + 1 + (request.path?.utf8.count ?? 0) + 9
        if lineBytes > maxRequestLineBytes {
            return (.uriTooLong, "The request line is longer than the gateway accepts (\(maxRequestLineBytes) bytes).")
        }
        // The conversion from HTTP/1 takes the first Host as the authority; a second one stays
        // among the fields, where it would reach the upstream.
        if request.authority == nil {
            return (.badRequest, "The request has no Host header.")
        }
        if request.headerFields[.host] != nil {
            return (.badRequest, "The request has more than one Host header.")
        }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        failUnfinishedBody(context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A half-close by the client ends the request too: a body still expected never comes.
        if case .some(.inputClosed) = event as? ChannelEvent { failUnfinishedBody(context) }
        context.fireUserInboundEventTriggered(event)
    }

    /// The body of the request being received will not arrive whole: fail its stream.
    private func failUnfinishedBody(_ context: ChannelHandlerContext) {
        guard inRequest else { return }
        inRequest = false
        context.fireErrorCaught(RequestBodyIncomplete())
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data), !closing else {
            context.write(data, promise: promise)
            return
        }
        answersOwed = max(0, answersOwed - 1)
        // The clock restarts for a request still arriving, or for the next one when none is
        // waiting for its answer (one being handled is not timed).
        if answersOwed == 0 || inRequest { waitingSince = .now() }
        // A later refusal is not about that request (a deferred one is about the last head).
        if answersOwed == 0 && deferredRefusal == nil { requestPath = nil }
        context.write(data, promise: promise)
        if earlierAnswersOwed == 0, let refusal = deferredRefusal {
            deferredRefusal = nil
            refuse(context, status: refusal.status, detail: refusal.detail)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // Counted before the body fails (which ends the request being received): the refusal
        // is about that request, so only answers to requests before it go first.
        let earlier = earlierAnswersOwed
        // A request whose head was passed on: its body stream fails before the refusal goes out.
        failUnfinishedBody(context)
        if case .headerOverflow = parserError {
            refuse(context, status: .requestHeaderFieldsTooLarge, detail: "The request's header section is larger than the gateway accepts.", earlier: earlier)
        } else {
            refuse(context, status: .badRequest, detail: "The request is not valid HTTP/1.1 (\(parserError)).", earlier: earlier)
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
    private func refuse(_ context: ChannelHandlerContext, status: HTTPResponse.Status, detail: String, earlier: Int? = nil) {
        guard !closing else { return }
        if (earlier ?? earlierAnswersOwed) > 0 {
            // Answers to earlier requests are still being written: this one comes after them.
            if deferredRefusal == nil { deferredRefusal = (status, detail) }
            return
        }
        closing = true
        timer?.cancel()
        let requestId = RequestID.next()
        let problem = Problem(status: status, type: [.requestHeaderFieldsTooLarge, .badRequest, .uriTooLong].contains(status) ? Problem.Kind.badRequest : "about:blank", detail: detail)
        // The path of the request it is about, when its head was parsed.
        let instance = requestPath.map { String($0.prefix { $0 != "?" }) } ?? ""
        let body = ByteBuffer(string: problem.body(instance: instance, requestId: requestId))
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
