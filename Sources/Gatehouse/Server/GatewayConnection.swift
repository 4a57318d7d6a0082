import GatehouseCore
import GatehousePolicies
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// One client connection: turns the parts NIO's HTTP/1 codec delivers into requests, runs each
/// in a task on this connection's loop (``GatewayResponder``), and writes the answer back.
///
/// Why not Hummingbird's connection handling (as before issue 13): it carries every part
/// through `NIOAsyncChannel`'s inbound stream and async writer, and that machinery was a fifth
/// of the gateway's CPU per request in the profile. Here the parts go straight from the
/// pipeline to the request and from the answer to the pipeline; a request costs one task.
///
/// - A small declared body (up to ``eagerBodyLimit``) is read whole before the request's task
///   starts, as nginx buffers request bodies: a policy reading it (`request:json()`) then reads
///   memory instead of waiting, and the upstream gets head and body in one write. A larger or
///   chunked body is handed to the task as an ``InboundBody`` with backpressure (reads are held
///   while the reader is behind). ConnectionGuard's request timeout bounds both.
/// - Pipelined requests wait in `pending`, with reads held, until the current answer is out;
///   there is no NIO pipelining handler, which toggled read interest on every request.
/// - An answer written while its request's body has not fully arrived closes the connection
///   afterwards (`Connection: close`), so an unread upload is never taken for a next request
///   and never drained at length.
/// - The idle timeout is one check per connection, re-armed only when it fires.
/// - A quiesce event (graceful shutdown) closes an idle connection now and a busy one after its
///   answer; closing the connection cancels the request task still running on it.
///
/// Everything here runs on the connection's loop; the request task writes through `onLoop`.
final class GatewayConnection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let responder: GatewayResponder
    private let executor: EventLoopTaskExecutor?
    private let shutdown: ShutdownState
    private let inFlight: RequestsInFlight
    private let idleTimeout: TimeAmount
    /// Declared bodies up to this size are read before the request starts.
    private let eagerBodyLimit: Int
    private var context: ChannelHandlerContext?
    private var loop: (any EventLoop)?
    private var clientAddress: String?

    private enum Reading {
        case awaitingHead
        /// A small body is being read whole; the request starts at its end.
        case buffering(HTTPRequest, ByteBuffer)
        /// The current request's body is arriving.
        case body(InboundBody)
        /// The current request has no body; its end is next.
        case bodyless
    }
    private var reading = Reading.awaitingHead
    /// Parts of requests after the current one (pipelining), handled once its answer is out.
    private var pending = CircularBuffer<HTTPRequestPart>()
    private var task: Task<Void, Never>?
    private var responding = false
    private var closeAfterResponse = false
    /// The client half-closed its side.
    private var inputEnded = false
    private var open = true
    private var readHeld = false
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?

    init(
        responder: GatewayResponder, executor: EventLoopTaskExecutor?, shutdown: ShutdownState, inFlight: RequestsInFlight,
        idleTimeout: TimeAmount, eagerBodyLimit: Int
    ) {
        self.eagerBodyLimit = eagerBodyLimit
        self.responder = responder
        self.executor = executor
        self.shutdown = shutdown
        self.inFlight = inFlight
        self.idleTimeout = idleTimeout
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop = context.eventLoop
        clientAddress = context.channel.remoteAddress?.ipAddress
        scheduleIdleCheck(at: .now() + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        let part = unwrapInboundIn(data)
        if !pending.isEmpty {
            pending.append(part)
            return
        }
        process(part)
    }

    private func process(_ part: HTTPRequestPart) {
        switch reading {
        case .awaitingHead:
            guard case .head(let head) = part else { return }
            if responding {
                // A pipelined request: it waits for the current answer.
                pending.append(part)
                return
            }
            begin(head)
        case .buffering(let head, var buffer):
            switch part {
            case .body(var bytes):
                reading = .awaitingHead // drop the reference so the append does not copy
                buffer.writeBuffer(&bytes)
                reading = .buffering(head, buffer)
            case .end:
                reading = .awaitingHead
                start(head, body: .buffered(buffer))
            case .head:
                close()
            }
        case .body(let body):
            switch part {
            case .body(let bytes):
                body.yield(bytes)
            case .end:
                body.finish()
                reading = .awaitingHead
            case .head:
                close()
            }
        case .bodyless:
            if case .end = part { reading = .awaitingHead }
        }
    }

    func read(context: ChannelHandlerContext) {
        // Backpressure: a body reader that is behind, or a pipelined request waiting, holds
        // the next read; the client's bytes wait at its socket.
        if case .body(let body) = reading, body.paused {
            readHeld = true
        } else if !pending.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// The body reader caught up, or the pipelined requests were taken.
    func resumeReading() {
        guard readHeld, open, let context else { return }
        readHeld = false
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ConnectionGuard answers parser errors itself; what reaches here is a body that did
        // not arrive whole (its reader must fail, not see an end) or an I/O error.
        switch reading {
        case .body(let body):
            body.finish(error)
            reading = .awaitingHead
        case .buffering:
            // A small body that broke off: the request never started, so nothing was sent.
            reading = .awaitingHead
            responding = false
            close()
            return
        case .awaitingHead, .bodyless:
            break
        }
        if !(error is RequestBodyIncomplete) { close() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        open = false
        idleCheck?.cancel()
        if case .body(let body) = reading { body.finish(RequestBodyIncomplete()) }
        reading = .awaitingHead
        // The client is gone (or shutdown's grace ran out): the request's work stops.
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client half-closed: no further request will come. What it sent is still
        // answered, in order, then the connection closes.
        if (event as? ChannelEvent) == .inputClosed {
            inputEnded = true
            if !responding && pending.isEmpty { close() }
            return
        }
        // Shutdown asks to quiesce: the answer in progress is still written, then the
        // connection closes (requests queued behind it are not started).
        if event is ChannelShouldQuiesceEvent {
            if responding {
                closeAfterResponse = true
            } else {
                close()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Serving a request

    /// A request head arrived: read a small body first, or start the request now.
    private func begin(_ head: HTTPRequest) {
        responding = true
        guard let loop else { return }
        let fields = head.headerFields
        if let connection = fields[.connection], connection.lowercased().contains("close") { closeAfterResponse = true }
        let length = fields[.contentLength].flatMap { Int($0) }
        if fields[.transferEncoding] == nil, let length, length > 0, length <= eagerBodyLimit {
            reading = .buffering(head, ByteBufferAllocator().buffer(capacity: length))
        } else if fields[.transferEncoding] != nil || (length ?? 0) > 0 {
            let body = InboundBody(loop: loop, connection: self)
            reading = .body(body)
            start(head, body: .stream(body.start()))
        } else {
            reading = .bodyless
            start(head, body: .none)
        }
    }

    private func start(_ head: HTTPRequest, body: GatewayResponder.Body) {
        guard let loop else { return }
        let incoming = GatewayResponder.Incoming(head: head, body: body, clientAddress: clientAddress, loop: loop, shutdown: shutdown)
        let responder = self.responder
        let inFlight = self.inFlight
        inFlight.begin()
        task = Task(executorPreference: executor) {
            let response = await responder.respond(to: incoming)
            await self.send(response, on: loop)
            inFlight.end()
        }
    }

    /// Writes the answer: a body in memory with its head in one flush, a stream part by part
    /// as the client takes them.
    private func send(_ response: ResponseState, on loop: any EventLoop) async {
        let head = HTTPResponse(status: response.status, headerFields: response.headers)
        switch response.body {
        case .empty:
            onLoop(loop) { self.writeWhole(head, nil) }
        case .buffered(let buffer):
            onLoop(loop) { self.writeWhole(head, buffer) }
        case .stream(let stream):
            onLoop(loop) { self.writeHead(head) }
            do {
                for try await chunk in stream.chunks {
                    let written: EventLoopFuture<Void>?
                    if loop.inEventLoop {
                        written = writeChunk(chunk)
                    } else {
                        written = try await loop.submit { self.writeChunk(chunk) }.get()
                    }
                    if let written { try await written.get() }
                }
                onLoop(loop) { self.writeEnd() }
            } catch {
                // The upstream broke off after the head went out: the client sees a cut
                // body (the connection closes), never a made-up end.
                onLoop(loop) { self.close() }
            }
        }
    }

    private func onLoop(_ loop: any EventLoop, _ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    /// `Connection: close` goes on the head when it is known that the connection will not
    /// carry another request. (An upload still arriving may yet end before the answer does;
    /// if it has not by then, the connection closes after the answer without the header.)
    private func finalHead(_ head: HTTPResponse) -> HTTPResponse {
        if case .buffering = reading { closeAfterResponse = true }
        guard closeAfterResponse else { return head }
        var head = head
        head.headerFields[.connection] = "close"
        return head
    }

    private func writeWhole(_ head: HTTPResponse, _ body: ByteBuffer?) {
        guard open, let context else { return responseEnded() }
        context.write(wrapOutboundOut(.head(finalHead(head))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        endResponse(context)
    }

    private func writeHead(_ head: HTTPResponse) {
        guard open, let context else { return }
        context.writeAndFlush(wrapOutboundOut(.head(finalHead(head))), promise: nil)
    }

    /// Writes a chunk; returns a future to wait on when the socket is not taking more.
    private func writeChunk(_ chunk: ByteBuffer) -> EventLoopFuture<Void>? {
        guard open, let context else { return nil }
        if context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(.body(chunk)), promise: nil)
            return nil
        }
        return context.writeAndFlush(wrapOutboundOut(.body(chunk)))
    }

    private func writeEnd() {
        guard open, let context else { return responseEnded() }
        endResponse(context)
    }

    private func endResponse(_ context: ChannelHandlerContext) {
        if closeAfterResponse || !requestComplete {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            open = false
            responseEnded()
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        responseEnded()
    }

    /// Processes queued parts in order: the next request's head (which starts it), then its
    /// body and end; stops at a further head while that request is being answered.
    private func drainPending() {
        while let part = pending.first {
            if case .head = part, responding { break }
            pending.removeFirst()
            process(part)
        }
        if pending.isEmpty { resumeReading() }
    }

    /// The current request's end has arrived.
    private var requestComplete: Bool {
        switch reading {
        case .body, .buffering: return false
        case .awaitingHead, .bodyless: return true
        }
    }

    private func responseEnded() {
        responding = false
        task = nil
        lastActivity = .now()
        guard open else { return }
        drainPending()
        if inputEnded && pending.isEmpty && !responding, case .awaitingHead = reading {
            // The client half-closed and every request it sent has been answered.
            close()
        }
    }

    private func close() {
        guard open else { return }
        open = false
        context?.close(promise: nil)
    }

    // MARK: Idle timeout

    private func scheduleIdleCheck(at deadline: NIODeadline) {
        guard let loop else { return }
        idleCheck = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [weak self] in self?.checkIdle() }
    }

    private func checkIdle() {
        guard open else { return }
        let due = lastActivity + idleTimeout
        let now = NIODeadline.now()
        if responding {
            scheduleIdleCheck(at: now + idleTimeout)
        } else if now >= due {
            close()
        } else {
            scheduleIdleCheck(at: due)
        }
    }
}
