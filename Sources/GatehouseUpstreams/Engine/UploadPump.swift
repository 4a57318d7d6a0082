import GatehouseCore
import NIOCore

/// Sends a client body that is still arriving to the upstream, one chunk at a time: the next
/// chunk is read from the client only once the upstream connection took the last one, so a
/// slow upstream slows the client and nothing piles up in between.
///
/// The chunks come from the server's inbound stream, which allows one reader at a time: once
/// the answer is out, the server reads the rest of the body itself. So the exchange holds its
/// answer until the pump has stopped (``Exchange/uploadStopped()``).
///
/// The pump's task runs wherever the body stream resumes it; everything it touches on the
/// connection hops to `loop` first, where `running` and `pendingWrite` live.
final class UploadPump: @unchecked Sendable {
    private let loop: any EventLoop
    // Strong: the pump can outlive the channel's hold on the connection by a hop; the cycle
    // (exchange → pump → exchange, connection) ends when the pump stops (`uploadStopped`).
    private let connection: UpstreamConnection
    private let exchange: Exchange
    /// Until the pump stopped (touched on `loop` only).
    private(set) var running = true
    private var stopRequested = false
    private var pendingWrite: EventLoopPromise<Void>?
    private var task: Task<Void, Never>?

    init(loop: any EventLoop, connection: UpstreamConnection, exchange: Exchange) {
        self.loop = loop
        self.connection = connection
        self.exchange = exchange
    }

    func start(_ body: StreamedBody) {
        let chunks = body.chunks
        task = Task { [self] in
            do {
                for try await chunk in chunks {
                    try await loop.flatSubmit { self.write(chunk) }.get()
                }
                // A cancelled stream may simply end: that is not the end of the body.
                try Task.checkCancellation()
                try await loop.submit { try self.writeEnd() }.get()
                loop.execute { self.stopped(nil) }
            } catch {
                loop.execute { self.stopped(error) }
            }
        }
    }

    /// Stops reading the client body (a refusal or a failure). The pump reports back through
    /// ``Exchange/uploadStopped()`` once it no longer reads.
    func cancel() {
        guard running, !stopRequested else { return }
        stopRequested = true
        task?.cancel()
        pendingWrite?.fail(CancellationError())
        pendingWrite = nil
    }

    private func write(_ chunk: ByteBuffer) -> EventLoopFuture<Void> {
        guard !stopRequested else { return loop.makeFailedFuture(CancellationError()) }
        let promise = loop.makePromise(of: Void.self)
        pendingWrite = promise
        connection.writeBodyPart(chunk).whenComplete { result in
            guard let pending = self.pendingWrite, pending.futureResult === promise.futureResult else { return }
            self.pendingWrite = nil
            pending.completeWith(result)
        }
        return promise.futureResult
    }

    private func writeEnd() throws {
        guard !stopRequested else { throw CancellationError() }
        connection.writeEnd(of: exchange)
    }

    private func stopped(_ error: (any Error)?) {
        running = false
        task = nil
        if let error, !stopRequested {
            // The client's body broke off or crossed the limit: the upstream request cannot be
            // completed, and the fault is the client's (400 / 413).
            connection.abort(exchange, error)
        }
        exchange.uploadStopped()
        connection.uploadStopped(exchange)
    }
}
