public import NIOCore
import Atomics

/// A request or response body: streamed through untouched unless a policy reads it.
public enum MessageBody: Sendable {
    case empty
    /// Fully in memory (read by a policy, set by a policy, or built by the gateway).
    case buffered(ByteBuffer)
    /// Still arriving: forwarded chunk by chunk unless a policy asks for it.
    case stream(StreamedBody)

    public static func text(_ text: String) -> MessageBody {
        text.isEmpty ? .empty : .buffered(ByteBuffer(string: text))
    }
}

/// A body that is still being received, from the client or from an upstream.
public struct StreamedBody: Sendable {
    /// The same body, cut off with ``BodyTooLarge`` once more than `limit` bytes went by (a
    /// limit of a route below the gateway's own).
    public func limited(to limit: Int) -> StreamedBody {
        StreamedBody(chunks: LimitedBody(ErasedChunks(base: chunks), limit: limit), length: length)
    }

    public let chunks: any AsyncSequence<ByteBuffer, any Error> & Sendable
    /// The declared length, when known (Content-Length).
    public let length: Int?

    public init(chunks: any AsyncSequence<ByteBuffer, any Error> & Sendable, length: Int?) {
        self.chunks = chunks
        self.length = length
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    public func collect(limit: Int) async throws -> ByteBuffer {
        if let length, length > limit { throw BodyTooLarge(limit: limit) }
        var buffer = ByteBuffer()
        for try await var chunk in chunks {
            guard buffer.readableBytes + chunk.readableBytes <= limit else { throw BodyTooLarge(limit: limit) }
            buffer.writeBuffer(&chunk)
        }
        return buffer
    }
}

/// Raised into a request's body stream when the body did not arrive whole: the client closed
/// (or half-closed) the connection, or the parser refused a later part of it. Whoever reads the
/// body then fails, so a partial body is never presented to an upstream as a complete one.
public struct RequestBodyIncomplete: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "the request body did not arrive whole" }
}

/// A body exceeded the configured limit while being read.
public struct BodyTooLarge: Error, Sendable {
    public let limit: Int

    public init(limit: Int) { self.limit = limit }
}

/// Passes chunks through and fails with ``BodyTooLarge`` once more than `limit` bytes went by:
/// a body is refused while it streams, not after it was buffered.
///
/// It can be read once: a second reader (a policy reading a body the upstream leg already
/// streamed) gets ``BodyAlreadyRead`` instead of a second iterator of the underlying stream,
/// which NIO's producers refuse by stopping the process.
public struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer
    let base: Base
    let limit: Int
    private let taken = ManagedAtomic(false)

    public init(_ base: Base, limit: Int) {
        self.base = base
        self.limit = limit
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator?
        let limit: Int
        var seen = 0

        public mutating func next() async throws -> ByteBuffer? {
            guard base != nil else { throw BodyAlreadyRead() }
            guard let chunk = try await base!.next() else { return nil }
            seen += chunk.readableBytes
            if seen > limit { throw BodyTooLarge(limit: limit) }
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let first = taken.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        return AsyncIterator(base: first ? base.makeAsyncIterator() : nil, limit: limit)
    }
}

/// A streamed body was read already (forwarded upstream, or read by an earlier policy).
public struct BodyAlreadyRead: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "the body was streamed on already and cannot be read again" }
}

/// Any chunk sequence as one concrete type (so it can be wrapped by a generic one).
struct ErasedChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: any AsyncSequence<ByteBuffer, any Error> & Sendable

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: any AsyncIteratorProtocol<ByteBuffer, any Error>
        mutating func next() async throws -> ByteBuffer? { try await inner.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: base.makeAsyncIterator()) }
}
