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
/// final answer; ``stop(on:)`` cancels it and reports when it no longer touches the stream.
final class RequestBodyPump: Sendable {
    private enum State {
        case idle
        case running(Task<Void, Never>, EventLoopFuture<Void>)
        case stopped
    }
    private let state = NIOLockedValueBox(State.idle)
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
                        try await writer.write(.byteBuffer(chunk)).get()
                    }
                }
                state = .running(task, promise.futureResult)
                return promise.futureResult
            }
        }
    }

    /// Stops reading the client body; the future completes (on `loop`) once the pump is done.
    func stop(on loop: any EventLoop) -> EventLoopFuture<Void> {
        let running: (Task<Void, Never>, EventLoopFuture<Void>)? = state.withLockedValue { state in
            defer { state = .stopped }
            if case .running(let task, let done) = state { return (task, done) }
            return nil
        }
        guard let (task, done) = running else { return loop.makeSucceededVoidFuture() }
        task.cancel()
        return done.hop(to: loop).recover { _ in }
    }
}
