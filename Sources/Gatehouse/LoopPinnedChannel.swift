import HummingbirdCore
import Logging
import NIOCore

/// Runs each connection's task on the connection's own event loop.
///
/// Hummingbird handles every connection in a task on Swift's global (Dispatch) executor, while
/// the socket, the Lua VM and the upstream connection all live on a NIO event loop. Without a
/// preference every request crossed threads several times (read the request on a Dispatch
/// thread, run policies on the loop, write the response from Dispatch again), and the futex
/// wake-ups for those hops were the largest single cost in the profile. Preferring the loop's
/// task executor for the whole connection keeps a request on one thread from first byte to last.
struct LoopPinnedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let executors: EventLoopExecutors

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        guard let executor = executors.executor(for: value.channel.eventLoop) else {
            await base.handle(value: value, logger: logger)
            return
        }
        await withTaskExecutorPreference(executor) {
            await base.handle(value: value, logger: logger)
        }
    }
}
