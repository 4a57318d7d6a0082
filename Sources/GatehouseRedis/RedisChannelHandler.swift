import NIOCore

/// The last handler of a Redis connection: decodes replies with ``RESPReader`` and completes
/// the commands' promises in the order they were written (RESP answers in order, so many
/// commands can be in flight on one connection: pipelining).
///
/// The command timeout costs one scheduled task per connection, not per command: it is armed
/// for the oldest command's deadline and re-armed, when it fires, for the next oldest. A
/// command past its deadline fails with every command behind it and the connection is closed,
/// since its late reply could no longer be told from the next one's. Confined to the loop.
final class RedisChannelHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RedisValue>
        let deadline: NIODeadline
    }

    private let reader = RESPReader()
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private let commandTimeout: TimeAmount
    /// Told once when the connection is gone (closed, failed or timed out).
    var onClose: ((RedisError) -> Void)?
    private var closed = false

    private let loop: any EventLoop

    init(loop: any EventLoop, commandTimeout: Duration) {
        self.loop = loop
        self.commandTimeout = TimeAmount(commandTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(.connectionClosed)
        self.context = nil
    }

    /// Writes one command (already RESP) and returns its reply, failed with
    /// ``RedisError/timedOut`` after `deadline` (default: the command timeout from now). Call on
    /// the channel's loop.
    func send(_ command: ByteBuffer, deadline: NIODeadline? = nil, flush: Bool = true) -> EventLoopFuture<RedisValue> {
        guard let context, !closed else {
            return loop.makeFailedFuture(RedisError.connectionClosed)
        }
        let promise = context.eventLoop.makePromise(of: RedisValue.self)
        let deadline = deadline ?? NIODeadline.now() + commandTimeout
        pending.append(Pending(promise: promise, deadline: deadline))
        if timer == nil { arm(at: deadline) }
        context.write(wrapOutboundOut(command), promise: nil)
        if flush { context.flush() }
        return promise.futureResult
    }

    func flush() {
        context?.flush()
    }

    func closeChannel() {
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() {
                guard let first = pending.popFirst() else {
                    throw RedisError.protocolError("a reply no command asked for")
                }
                first.promise.succeed(reply)
            }
            if pending.isEmpty {
                timer?.cancel()
                timer = nil
            }
        } catch let error as RedisError {
            close(with: error)
        } catch {
            close(with: .protocolError("\(error)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(with: .unavailable("\(error)"))
    }

    private func arm(at deadline: NIODeadline) {
        guard let context else { return }
        timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let oldest = pending.first else { return }
            if oldest.deadline <= .now() {
                close(with: .timedOut)
            } else {
                arm(at: oldest.deadline)
            }
        }
    }

    private func close(with error: RedisError) {
        fail(error)
        context?.close(promise: nil)
    }

    /// Fails every command waiting and reports the connection gone (once). Marked closed
    /// first, so a command sent from a failure callback is refused rather than queued here.
    private func fail(_ error: RedisError) {
        let first = !closed
        closed = true
        timer?.cancel()
        timer = nil
        let waiting = pending
        pending.removeAll()
        for command in waiting { command.promise.fail(error) }
        if first { onClose?(error) }
    }
}
