import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore

/// A streamed answer from a group's target: the target's lease ends with the body, not the
/// head, so a body that stalls or breaks off counts against the target's breaker, and
/// `least-outstanding` sees a long download or event stream as in flight until it ends.
struct LeasedChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: any AsyncSequence<ByteBuffer, any Error> & Sendable
    let lease: LeaseEnd

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: any AsyncIteratorProtocol<ByteBuffer, any Error>
        let lease: LeaseEnd

        mutating func next() async throws -> ByteBuffer? {
            do {
                if let chunk = try await inner.next() { return chunk }
                lease.finish(.success)
                return nil
            } catch {
                // The client leaving is not the target's failure.
                lease.finish(Task.isCancelled ? .neutral : .failure)
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: base.makeAsyncIterator(), lease: lease)
    }

    /// `body` with `lease` ended by its end (or, if nobody reads it to the end, when it is
    /// dropped, without a verdict).
    static func wrap(_ body: StreamedBody, lease: UpstreamGroup.Lease) -> StreamedBody {
        StreamedBody(chunks: LeasedChunks(base: body.chunks, lease: LeaseEnd(lease)), length: body.length)
    }
}

/// Ends a lease exactly once.
final class LeaseEnd: Sendable {
    private let lease: UpstreamGroup.Lease
    private let ended = NIOLockedValueBox(false)

    init(_ lease: UpstreamGroup.Lease) { self.lease = lease }

    func finish(_ outcome: TargetHealth.Outcome) {
        let first = ended.withLockedValue { ended in
            defer { ended = true }
            return !ended
        }
        if first { lease.finish(outcome) }
    }

    deinit { finish(.neutral) }
}
