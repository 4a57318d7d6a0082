import AsyncHTTPClient
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore

/// Writes a client body that is still arriving to the upstream, chunk by chunk, as fast as the
/// upstream connection accepts it.
///
/// The chunks come from the server's inbound stream, which allows one reader at a time: once
/// the response is written, the server reads the rest of the body itself (to keep the
/// connection usable). So the pump must have stopped reading before the exchange hands on its
/// final answer.
///
/// An upstream may answer before it read the whole body (nginx's `return` does). If
/// AsyncHTTPClient takes in that whole answer while the body is still being sent, it can
/// report the request finished and then refuse the rest of the body, leaving the upstream
/// connection half-sent and never reused. So a successful answer is held until the body was
/// sent (``sent(on:)``, used by the exchange before it takes the head), and the pump is
/// only cancelled when the exchange failed or the upstream refused with 3xx–5xx
/// (``cancel(on:)``), so such an answer does not wait for the rest of an unwanted upload.
final class RequestBodyPump: Sendable {
    private enum State {
        case idle
        case running(Task<Void, Never>, EventLoopFuture<Void>)
        case stopped
    }
    private let state = NIOLockedValueBox(State.idle)
    /// The write the pump is waiting on, taken by whoever completes it first.
    private let gate = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
    private let body: StreamedBody

    init(_ body: StreamedBody) {
        self.body = body
    }

    /// The body to give AsyncHTTPClient; it starts the pump when the request head was sent.
    func requestBody(on loop: any EventLoop) -> HTTPClient.Body {
        .stream(contentLength: body.length.map { Int64($0) }) { writer in
            let promise = loop.makePromise(of: Void.self)
            let chunks = self.body.chunks
            return self.state.withLockedValue { state in
                guard case .idle = state else {
                    promise.fail(CancellationError())
                    return promise.futureResult
                }
                let task = promise.completeWithTask {
                    for try await chunk in chunks {
                        try await self.accepted(writer.write(.byteBuffer(chunk)), on: loop)
                    }
                }
                state = .running(task, promise.futureResult)
                return promise.futureResult
            }
        }
    }

    /// Waits for AsyncHTTPClient to take a chunk. After a 3xx-5xx answer it pauses the upload
    /// and may never complete that write, so the wait ends on cancellation too.
    private func accepted(_ write: EventLoopFuture<Void>, on loop: any EventLoop) async throws {
        let waiting = loop.makePromise(of: Void.self)
        gate.withLockedValue { $0 = waiting }
        write.whenComplete { result in self.takeGate(waiting)?.completeWith(result) }
        try await withTaskCancellationHandler {
            try await waiting.futureResult.get()
        } onCancel: {
            self.takeGate(waiting)?.fail(CancellationError())
        }
    }

    private func takeGate(_ promise: EventLoopPromise<Void>) -> EventLoopPromise<Void>? {
        gate.withLockedValue { current in
            guard let taken = current, taken.futureResult === promise.futureResult else { return nil }
            current = nil
            return taken
        }
    }

    /// Completes (on `loop`) once the pump has sent the whole body, or ended because the
    /// upstream connection stopped accepting it; immediately if it is not running. The pump
    /// may still start afterwards.
    func sent(on loop: any EventLoop) -> EventLoopFuture<Void> {
        let done: EventLoopFuture<Void>? = state.withLockedValue { state in
            if case .running(_, let done) = state { return done }
            return nil
        }
        return done.map { $0.hop(to: loop).recover { _ in } } ?? loop.makeSucceededVoidFuture()
    }

    /// Like ``sent(on:)``, and the pump can no longer start: the exchange is over.
    func finished(on loop: any EventLoop) -> EventLoopFuture<Void> {
        stop(on: loop, cancelling: false)
    }

    /// Stops reading the client body; completes (on `loop`) once the pump no longer reads it.
    func cancel(on loop: any EventLoop) -> EventLoopFuture<Void> {
        stop(on: loop, cancelling: true)
    }

    private func stop(on loop: any EventLoop, cancelling: Bool) -> EventLoopFuture<Void> {
        let running: (Task<Void, Never>, EventLoopFuture<Void>)? = state.withLockedValue { state in
            defer { state = .stopped }
            if case .running(let task, let done) = state { return (task, done) }
            return nil
        }
        guard let (task, done) = running else { return loop.makeSucceededVoidFuture() }
        if cancelling { task.cancel() }
        return done.hop(to: loop).recover { _ in }
    }
}
