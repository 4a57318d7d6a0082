import AsyncHTTPClient
import GatehouseCore
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Receives one upstream response on the event loop that owns both the client connection and
/// the upstream connection, and hands it to the request's task as soon as the head arrives.
///
/// Why not AsyncHTTPClient's `async` API: every call there starts an unstructured task on the
/// global executor (to register cancellation) and streams every body through an async
/// sequence, which cost a thread wake-up per request and was the largest avoidable cost in
/// the profile. The delegate API runs on the loop we choose and calls us back in place.
///
/// Small responses with a declared length (up to `wholeBodyLimit`) are collected and handed on
/// whole, so the server writes head and body at once; anything else streams with backpressure:
/// the upstream connection is read only as fast as the client takes the bytes.
///
/// Every callback from AsyncHTTPClient arrives on `loop`; calls from the body's consumer
/// (`produceMore`, `didTerminate`) may come from anywhere and hop to `loop` first, so `state`
/// is only touched there.
/// The upstream's answer is not valid HTTP (reported as a 502, never retried: it did answer).
struct InvalidUpstreamResponse: Error {
    let detail: String
}

final class UpstreamExchange: HTTPClientResponseDelegate, NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    typealias Response = Void
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamExchange
    >

    /// Completed once, with the response head (and the body when it was collected whole).
    let head: EventLoopPromise<UpstreamClient.Response>
    private let loop: any EventLoop
    private let bodyless: Bool
    private let wholeBodyLimit: Int
    /// Set when the client body streams: stopped before the final answer is handed on.
    private let pump: RequestBodyPump?

    private enum State {
        case awaitingHead
        /// A small body with a declared length, collected before the head is handed on.
        case collecting(UpstreamClient.Response, ByteBuffer)
        /// Handed on; `demand` is completed when the consumer wants more.
        case streaming(Producer.Source, demand: EventLoopPromise<Void>?)
        case done
    }
    private var state = State.awaitingHead
    /// The upstream answered 3xx-5xx: a client body still arriving is not wanted any more.
    private var refused = false
    /// The request in AsyncHTTPClient, to cancel when its answer is no longer wanted.
    private var task: HTTPClient.Task<Void>?
    /// For a refusal while the upload streams (see `settleRefusal`): the declared length of
    /// the answer's body, what arrived of it, and the fallback timer.
    private var expected: Int?
    private var received = 0
    private var refusalTimer: Scheduled<Void>?
    private var settling = false

    init(loop: any EventLoop, method: HTTPRequest.Method, wholeBodyLimit: Int, pump: RequestBodyPump?) {
        self.loop = loop
        self.pump = pump
        self.head = loop.makePromise()
        self.bodyless = method == .head
        self.wholeBodyLimit = wholeBodyLimit
    }

    // MARK: AsyncHTTPClient callbacks (on `loop`)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ responseHead: HTTPResponseHead) -> EventLoopFuture<Void> {
        guard case .awaitingHead = state else { return loop.makeSucceededVoidFuture() }
        // A success that arrived before the upload was read: finish sending the upload before
        // taking the answer in (see `RequestBodyPump`). For a 3xx-5xx answer the client stops
        // sending the body by itself.
        if let pump, responseHead.status.code < 300 {
            return pump.sent(on: loop).map { self.takeHead(task, responseHead) }
        }
        takeHead(task, responseHead)
        return loop.makeSucceededVoidFuture()
    }

    private func takeHead(_ task: HTTPClient.Task<Void>, _ responseHead: HTTPResponseHead) {
        refused = responseHead.status.code >= 300
        self.task = task
        defer { if refused, pump != nil, !isDone { armRefusalTimer() } }
        var fields = HTTPFields()
        fields.reserveCapacity(responseHead.headers.count)
        for (name, value) in responseHead.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        HopByHop.strip(&fields)
        // A final status must be 200-599 (RFC 9110 §15; 1xx are interim and handled by the
        // client library). Anything else is not passed on as if it meant something.
        guard (200...599).contains(Int(responseHead.status.code)) else {
            state = .done
            head.fail(InvalidUpstreamResponse(detail: "status \(responseHead.status.code)"))
            task.cancel()
            return
        }
        let status = HTTPResponse.Status(code: Int(responseHead.status.code))
        let length = fields[.contentLength].flatMap { Int($0) }
        expected = length
        if bodyless || status == .noContent || status == .notModified || length == 0 {
            state = .done
            head.succeed(UpstreamClient.Response(status: status, headers: fields, body: .empty))
        } else if let length, length <= wholeBodyLimit {
            state = .collecting(
                UpstreamClient.Response(status: status, headers: fields, body: .empty),
                ByteBufferAllocator().buffer(capacity: length))
        } else {
            let producer = Producer.makeSequence(
                backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8), finishOnDeinit: false, delegate: self)
            state = .streaming(producer.source, demand: nil)
            head.succeed(UpstreamClient.Response(
                status: status, headers: fields, body: .stream(StreamedBody(chunks: producer.sequence, length: length))))
        }
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        let next = take(part)
        if refused, pump != nil {
            received += part.readableBytes
            if let expected, received >= expected { settleRefusal() } else if !isDone { armRefusalTimer() }
        }
        return next
    }

    private func take(_ part: ByteBuffer) -> EventLoopFuture<Void> {
        switch state {
        case .collecting(let response, var buffer):
            var part = part
            state = .done // drop our reference so the append does not copy
            buffer.writeBuffer(&part)
            state = .collecting(response, buffer)
            return loop.makeSucceededVoidFuture()
        case .streaming(let source, _):
            switch source.yield(part) {
            case .produceMore:
                return loop.makeSucceededVoidFuture()
            case .stopProducing:
                let demand = loop.makePromise(of: Void.self)
                state = .streaming(source, demand: demand)
                return demand.futureResult
            case .dropped:
                // The consumer is gone (the client disconnected or a policy replaced the body).
                state = .done
                task?.cancel()
                return loop.makeSucceededVoidFuture()
            }
        case .awaitingHead, .done:
            return loop.makeSucceededVoidFuture()
        }
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        afterPump(failed: refused) { self.finish() }
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        afterPump(failed: true) { self.fail(error) }
    }

    /// AsyncHTTPClient is done with the response: the client body (if it streams) must no
    /// longer be read by us when the answer goes on, since the server reads the rest of it
    /// next. After a success the pump finishes sending it; after a failure or a refusal it is
    /// cancelled, so the answer does not wait for the rest of an unwanted upload (the client
    /// connection is then closed after the answer, as the body was not read to its end).
    private func afterPump(failed: Bool, _ body: @escaping @Sendable () -> Void) {
        guard let pump else { return body() }
        let loop = self.loop
        (failed ? pump.cancel(on: loop) : pump.finished(on: loop)).whenComplete { _ in
            loop.preconditionInEventLoop()
            body()
        }
    }

    private var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// A 3xx-5xx answer to an upload still streaming. AsyncHTTPClient pauses the upload, and
    /// may then hold back the end of the answer until an upload that will never resume ends:
    /// without this the request would wait forever. So the answer is settled here once its
    /// declared length has arrived, or after a second without data (an unsized body, or one
    /// that stops short, which is then a 502 or a cut): the pump is cancelled, the answer
    /// handed on, and the upstream request (left mid-upload) abandoned.
    private func settleRefusal() {
        guard !settling, let pump else { return }
        settling = true
        refusalTimer?.cancel()
        refusalTimer = nil
        let task = self.task
        pump.cancel(on: loop).whenComplete { _ in
            if let expected = self.expected, self.received < expected {
                self.fail(HTTPClientError.remoteConnectionClosed)
            } else {
                self.finish()
            }
            task?.cancel()
        }
    }

    private func armRefusalTimer() {
        refusalTimer?.cancel()
        refusalTimer = loop.scheduleTask(in: .seconds(1)) { self.settleRefusal() }
    }

    private func finish() {
        refusalTimer?.cancel()
        switch state {
        case .collecting(var response, let buffer):
            response.body = .buffered(buffer)
            state = .done
            head.succeed(response)
        case .streaming(let source, let demand):
            state = .done
            source.finish()
            demand?.succeed()
        case .awaitingHead:
            state = .done
            head.fail(HTTPClientError.remoteConnectionClosed)
        case .done:
            break
        }
    }

    private func fail(_ error: any Error) {
        refusalTimer?.cancel()
        switch state {
        case .awaitingHead, .collecting:
            head.fail(error)
        case .streaming(let source, let demand):
            source.finish(error)
            demand?.succeed()
        case .done:
            break
        }
        state = .done
    }

    // MARK: Body consumer callbacks (any thread)

    func produceMore() {
        loop.execute { self.resume() }
    }

    func didTerminate() {
        loop.execute { self.consumerGone() }
    }

    private func resume() {
        guard case .streaming(let source, let demand?) = state else { return }
        state = .streaming(source, demand: nil)
        demand.succeed()
    }

    private func consumerGone() {
        guard case .streaming(_, let demand) = state else { return }
        // Stops reading the upstream; the connection is closed rather than reused.
        state = .done
        task?.cancel()
        demand?.succeed()
    }
}
