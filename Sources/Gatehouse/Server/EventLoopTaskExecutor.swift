import NIOCore

/// A task executor that runs jobs on one NIO event loop.
///
/// Each connection's task prefers the executor of the connection's loop (`LoopPinnedChannel`),
/// so the whole request (reading it, route match, every Lua invocation on that loop's VM, the
/// upstream call, which takes its connection from the current loop, and writing the answer)
/// runs on one thread with no hops between them.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// One executor per loop of a group, built once.
struct EventLoopExecutors: Sendable {
    private let executors: [ObjectIdentifier: EventLoopTaskExecutor]

    init(group: any EventLoopGroup) {
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for loop in group.makeIterator() { executors[ObjectIdentifier(loop)] = EventLoopTaskExecutor(loop: loop) }
        self.executors = executors
    }

    func executor(for loop: any EventLoop) -> EventLoopTaskExecutor? { executors[ObjectIdentifier(loop)] }
}
