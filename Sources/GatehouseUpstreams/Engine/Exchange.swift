import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

/// One request and its response on an upstream connection: what to send, and the state of the
/// answer as it arrives. Created by the caller, then touched only on `loop`, except for the
/// body consumer's callbacks (``produceMore()``, ``didTerminate()``), which hop there first.
final class Exchange: NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, Exchange
    >

    let loop: any EventLoop
    let origin: UpstreamOrigin
    let head: HTTPRequestHead
    let body: MessageBody
    let responseTimeout: TimeAmount
    /// For a connection opened for this exchange.
    let connectTimeout: TimeAmount
    /// Completed once: with the response (its body still streaming unless it was small), or
    /// with the failure.
    let result: EventLoopPromise<UpstreamClient.Response>
    private let wholeBodyLimit: Int

    /// The connection serving this exchange (nil while it waits for one, and after it ended).
    var connection: UpstreamConnection?
    /// The caller stopped waiting (its task was cancelled).
    private(set) var cancelled = false

    enum Phase {
        case awaitingHead
        /// A small body with a declared length, read whole before it is handed on.
        case collecting(UpstreamClient.Response, ByteBuffer)
        case streaming(Producer.Source)
        case ended
    }
    private(set) var phase = Phase.awaitingHead
    /// The upstream may keep the connection open after this response.
    private(set) var keepAlive = true
    /// The whole request was written (a streamed upload may still be under way).
    var requestSent = false
    /// The answer is ready but waits for the upload to finish (a success) or stop (a refusal),
    /// since the server reads the rest of the client body itself once the answer is out.
    private var heldAnswer: Result<UpstreamClient.Response, any Error>?
    private var answered = false
    /// The streamed upload, while it runs.
    var pump: UploadPump?
    /// The consumer of a streamed response wants no more for now: reads are held.
    private(set) var paused = false

    init(
        loop: any EventLoop, origin: UpstreamOrigin, head: HTTPRequestHead, body: MessageBody,
        responseTimeout: TimeAmount, connectTimeout: TimeAmount, wholeBodyLimit: Int
    ) {
        self.connectTimeout = connectTimeout
        self.loop = loop
        self.origin = origin
        self.head = head
        self.body = body
        self.responseTimeout = responseTimeout
        self.wholeBodyLimit = wholeBodyLimit
        self.result = loop.makePromise()
    }

    var isEnded: Bool {
        if case .ended = phase { return true }
        return false
    }

    var awaitingHead: Bool {
        if case .awaitingHead = phase { return true }
        return false
    }

    // MARK: The response, from the connection (on `loop`)

    /// Takes the response head. Throws when it cannot be forwarded.
    func receive(_ responseHead: HTTPResponseHead) throws {
        guard case .awaitingHead = phase else { throw UpstreamError.invalidResponse("a second response head") }
        let code = Int(responseHead.status.code)
        // Interim 1xx answers are dropped by the decoder; what is left must be a final status
        // (RFC 9110 §15). Anything else is not passed on as if it meant something.
        guard (200...599).contains(code) else { throw UpstreamError.invalidResponse("status \(code)") }
        keepAlive = responseHead.isKeepAlive
        let bodyless = head.method == .HEAD || code == 204 || code == 304
        if !bodyless && !responseHead.headers.contains(name: "content-length") && !responseHead.headers.contains(name: "transfer-encoding") {
            // Delimited by the close: the connection ends with this response.
            keepAlive = false
        }
        var fields = HTTPFields()
        fields.reserveCapacity(responseHead.headers.count)
        for (name, value) in responseHead.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        HopByHop.strip(&fields)
        let status = HTTPResponse.Status(code: code)
        let length = fields[.contentLength].flatMap { Int($0) }
        let response = UpstreamClient.Response(status: status, headers: fields, body: .empty)
        let refusal = code >= 300 && !requestSent
        if refusal {
            // The upstream refused an upload it has not read: stop sending it. The connection
            // is left mid-request and will not be reused.
            keepAlive = false
            pump?.cancel()
        }
        if bodyless || length == 0 {
            phase = .collecting(response, ByteBuffer())
        } else if let length, length <= wholeBodyLimit {
            phase = .collecting(response, ByteBufferAllocator().buffer(capacity: length))
        } else {
            let producer = Producer.makeSequence(
                backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8), finishOnDeinit: false, delegate: self)
            phase = .streaming(producer.source)
            var streamed = response
            streamed.body = .stream(StreamedBody(chunks: producer.sequence, length: length))
            // A streamed success goes on at once even while the upload goes on: an upstream that
            // answers as it reads (a full-duplex stream) would otherwise wait for a reader that
            // waits for it. (The server never reads the client body itself, so the pump stays
            // its only reader.)
            answer(.success(streamed), afterUpload: refusal)
        }
    }

    func receive(_ part: ByteBuffer) {
        switch phase {
        case .collecting(let response, var buffer):
            var part = part
            phase = .ended // drop our reference so the append does not copy
            buffer.writeBuffer(&part)
            phase = .collecting(response, buffer)
        case .streaming(let source):
            switch source.yield(part) {
            case .produceMore: break
            case .stopProducing: paused = true
            case .dropped: consumerGone()
            }
        case .awaitingHead, .ended:
            break
        }
    }

    /// The response ended. Returns whether the connection can serve another request.
    func receiveEnd() -> Bool {
        switch phase {
        case .collecting(var response, let buffer):
            if buffer.readableBytes > 0 { response.body = .buffered(buffer) }
            phase = .ended
            answer(.success(response))
        case .streaming(let source):
            phase = .ended
            source.finish()
        case .awaitingHead, .ended:
            phase = .ended
        }
        return keepAlive && requestSent && !cancelled
    }

    /// The exchange failed (connection closed or broke, timeout, upload failed, cancelled).
    func fail(_ error: any Error) {
        switch phase {
        case .awaitingHead, .collecting:
            answer(.failure(error))
        case .streaming(let source):
            // The head went on already: the client sees the body cut.
            source.finish(error)
        case .ended:
            break
        }
        phase = .ended
        pump?.cancel()
    }

    /// The caller's task was cancelled: its connection, if any, is closed.
    func cancel() {
        cancelled = true
        if let connection {
            connection.abort(self, UpstreamError.closed(CancellationError()))
        } else {
            fail(CancellationError())
        }
    }

    /// Hands on the answer: at once, or (`afterUpload`) after the upload stopped (see
    /// `heldAnswer`).
    private func answer(_ outcome: Result<UpstreamClient.Response, any Error>, afterUpload: Bool = true) {
        guard !answered else { return }
        if afterUpload, let pump, pump.running {
            guard heldAnswer == nil else { return }
            heldAnswer = outcome
            // A failure or refusal does not wait for the rest of an unwanted upload.
            if case .failure = outcome { pump.cancel() }
            return
        }
        answered = true
        result.completeWith(outcome)
    }

    /// The upload ended (sent, cancelled or failed): a held answer goes on now.
    func uploadStopped() {
        pump = nil
        if let held = heldAnswer {
            heldAnswer = nil
            answer(held)
        }
    }

    // MARK: Body consumer callbacks (any thread)

    func produceMore() {
        if loop.inEventLoop { resume() } else { loop.execute { self.resume() } }
    }

    func didTerminate() {
        if loop.inEventLoop { consumerGone() } else { loop.execute { self.consumerGone() } }
    }

    private func resume() {
        guard paused else { return }
        paused = false
        connection?.resumeReading()
    }

    private func consumerGone() {
        guard case .streaming = phase else { return }
        // The client left or a policy replaced the body: the rest is not read, so the
        // connection cannot be reused.
        phase = .ended
        keepAlive = false
        connection?.abort(self, UpstreamError.closed(CancellationError()))
    }
}
