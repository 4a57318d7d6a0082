@testable import Gatehouse
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Each connection's task must run on its channel's event loop (where its Lua VM and its
/// upstream connections live), not on Swift's global executor.
@Suite struct LoopPinningTests {
    /// A child channel that records where its handler ran, before and after a suspension.
    struct Probe: ServerChildChannel {
        struct Value: ServerChildChannelValue { let channel: any Channel }
        let onLoop: NIOLockedValueBox<[Bool]>

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeSucceededFuture(Value(channel: channel))
        }

        func handle(value: Value, logger: Logger) async {
            let before = value.channel.eventLoop.inEventLoop
            try? await Task.sleep(for: .milliseconds(5))
            let after = value.channel.eventLoop.inEventLoop
            onLoop.withLockedValue { $0 = [before, after] }
        }
    }

    @Test func aConnectionsTaskRunsOnItsChannelsLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let channel = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let seen = NIOLockedValueBox<[Bool]>([])
        let pinned = LoopPinnedChannel(base: Probe(onLoop: seen), executors: EventLoopExecutors(group: group))
        await pinned.handle(value: Probe.Value(channel: channel), logger: Logger(label: "test"))
        #expect(seen.withLockedValue { $0 } == [true, true])
        try await channel.close()
        try await group.shutdownGracefully()
    }
}
