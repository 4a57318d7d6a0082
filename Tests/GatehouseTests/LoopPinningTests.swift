@testable import Gatehouse
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Each request's task must run on its connection's event loop (where its Lua VM and its
/// upstream connections live), not on Swift's global executor. `GatewayConnection` starts
/// every request task with the loop's `EventLoopTaskExecutor` as its preference; this checks
/// that such a task is on the loop before and after a suspension, and that one without the
/// preference is not (so the check can tell the two apart).
@Suite struct LoopPinningTests {
    @Test func aTaskPreferringTheLoopsExecutorRunsOnTheLoopAcrossSuspensions() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let executors = EventLoopExecutors(group: group)
        let pinned = try #require(executors.executor(for: loop))
        let seen = NIOLockedValueBox<[Bool]>([])
        await Task(executorPreference: pinned) {
            seen.withLockedValue { $0.append(loop.inEventLoop) }
            try? await Task.sleep(for: .milliseconds(5))
            seen.withLockedValue { $0.append(loop.inEventLoop) }
        }.value
        #expect(seen.withLockedValue { $0 } == [true, true])
        let unpinned = await Task { loop.inEventLoop }.value
        #expect(unpinned == false)
        try await group.shutdownGracefully()
    }
}
