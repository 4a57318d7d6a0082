import Atomics

/// Reachability of a store, as its users saw it, with hysteresis: the first failure makes it
/// down; it is up again only after `quietPeriod` without a failure. One connection per event
/// loop, each with its own backoff, means that during a recovery some requests succeed and some
/// still fail for a moment: without the quiet period each alternation would be a transition,
/// and every transition is a log line.
public final class RedisHealth: Sendable {
    private let down = ManagedAtomic<Bool>(false)
    private let lastFailure = ManagedAtomic<Int64>(0)
    private let quietPeriodNanoseconds: Int64
    private let epoch = ContinuousClock.now

    public init(quietPeriod: Duration = .milliseconds(2_500)) {
        let (s, atto) = quietPeriod.components
        quietPeriodNanoseconds = s * 1_000_000_000 + atto / 1_000_000_000
    }

    private var now: Int64 {
        let (s, atto) = (ContinuousClock.now - epoch).components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// A failure: true when this one made the store down (log it).
    public func failed() -> Bool {
        lastFailure.store(now, ordering: .relaxed)
        guard !down.load(ordering: .relaxed) else { return false }
        return !down.exchange(true, ordering: .relaxed)
    }

    /// A success: true when it made the store up again (log it).
    public func succeeded() -> Bool {
        guard down.load(ordering: .relaxed), now - lastFailure.load(ordering: .relaxed) >= quietPeriodNanoseconds else { return false }
        return down.exchange(false, ordering: .relaxed)
    }

    public var isDown: Bool { down.load(ordering: .relaxed) }
}
