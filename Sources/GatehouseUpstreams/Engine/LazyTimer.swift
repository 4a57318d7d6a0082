import NIOCore

/// A deadline checked by one scheduled task that is re-armed only when it fires, so moving the
/// deadline (every request, every body read) schedules nothing.
///
/// The task is never scheduled further ahead than `horizon` (the shortest timeout the owner
/// uses). Any later deadline is then at or after the scheduled check, so arming a new deadline
/// never has to cancel and reschedule; only a deadline shorter than the horizon (a fetch with a
/// short timeout) does. The cost is that a deadline far ahead is checked, and the task re-armed,
/// once per horizon. Confined to `loop`.
struct LazyTimer {
    private(set) var deadline: NIODeadline?
    private var scheduled: Scheduled<Void>?
    private var scheduledAt = NIODeadline.distantFuture
    private let horizon: TimeAmount
    /// What runs when the scheduled check comes due (set once by the owner).
    var onFire: (() -> Void)?

    init(horizon: TimeAmount) {
        self.horizon = horizon
    }

    /// Sets the deadline (nil: none). `onFire` is called on `loop` when a check comes due.
    mutating func arm(_ deadline: NIODeadline?, on loop: any EventLoop, stats: EngineCounters) {
        self.deadline = deadline
        guard let deadline else { return }
        if scheduled != nil && scheduledAt <= deadline { return }
        scheduled?.cancel()
        schedule(at: min(deadline, .now() + horizon), on: loop, stats: stats)
    }

    /// Called by the owner when the scheduled task ran: returns true when the deadline has
    /// passed (the owner acts), otherwise schedules the next check.
    mutating func checkFired(on loop: any EventLoop, stats: EngineCounters) -> Bool {
        scheduled = nil
        scheduledAt = .distantFuture
        guard let deadline else { return false }
        let now = NIODeadline.now()
        if now >= deadline {
            self.deadline = nil
            return true
        }
        schedule(at: min(deadline, now + horizon), on: loop, stats: stats)
        return false
    }

    mutating func cancel() {
        scheduled?.cancel()
        scheduled = nil
        scheduledAt = .distantFuture
        deadline = nil
    }

    private mutating func schedule(at time: NIODeadline, on loop: any EventLoop, stats: EngineCounters) {
        guard let onFire else { return }
        stats.timersScheduled += 1
        scheduledAt = time
        scheduled = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: time) { onFire() }
    }
}
