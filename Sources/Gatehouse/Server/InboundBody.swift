import NIOCore

/// A request body as it arrives on a client connection, handed to the request's task as an
/// async sequence with backpressure: when the reader is not keeping up, the connection holds
/// its reads, so the client's bytes wait at its socket instead of in memory.
///
/// The source side is used on the connection's loop; the delegate callbacks (from the reader,
/// on any thread) hop there.
final class InboundBody: NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, InboundBody
    >

    private let loop: any EventLoop
    private weak var connection: GatewayConnection?
    private var source: Producer.Source?
    /// The reader wants no more for now.
    private(set) var paused = false

    init(loop: any EventLoop, connection: GatewayConnection) {
        self.loop = loop
        self.connection = connection
    }

    /// Creates the sequence (separately from `init`, since the producer needs `self`).
    func start() -> Producer {
        let made = Producer.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16), finishOnDeinit: false, delegate: self)
        source = made.source
        return made.sequence
    }

    func yield(_ part: ByteBuffer) {
        guard let source else { return }
        switch source.yield(part) {
        case .produceMore: break
        case .stopProducing: paused = true
        case .dropped: self.source = nil
        }
    }

    func finish(_ error: (any Error)? = nil) {
        if let error { source?.finish(error) } else { source?.finish() }
        source = nil
        paused = false
    }

    func produceMore() {
        if loop.inEventLoop { resume() } else { loop.execute { self.resume() } }
    }

    func didTerminate() {
        if loop.inEventLoop { readerGone() } else { loop.execute { self.readerGone() } }
    }

    private func resume() {
        guard paused else { return }
        paused = false
        connection?.resumeReading()
    }

    private func readerGone() {
        source = nil
        if paused {
            paused = false
            connection?.resumeReading()
        }
    }
}
