public import GatehouseCore
public import NIOCore
import NIOConcurrencyHelpers

/// What is known about one target of a group: its circuit breaker, its active-check health and
/// the requests in flight to it. Shared by every event loop (hence the lock; each request
/// takes it twice, to be admitted and to report how it went) and kept across reloads while
/// the target's URL stays in its group.
///
/// The breaker, as seed 003 describes it:
/// - **closed**: requests flow; `threshold` consecutive failures (or, with `failureRate`, that
///   share of failures over the window) open it.
/// - **open**: no request is sent until `timeout` ms have passed (growing with each
///   consecutive opening up to `maxTimeout`); then it is half-open.
/// - **half-open**: at most `halfOpenMax` probes are in flight at once. A probe's success
///   closes the breaker, a failure opens it again. Each probe holds its slot only until its
///   deadline, so a probe that never reports (a lost task) cannot keep the breaker half-open.
public final class TargetHealth: Sendable {
    public enum BreakerState: String, Sendable {
        case closed, open, halfOpen = "half-open"
    }

    /// How a request sent to the target went, as far as the target is concerned.
    public enum Outcome: Sendable {
        case success
        /// Connect error, timeout, or an answer with a failure status.
        case failure
        /// Neither: the client went away, or the fault was the client's (its body was too
        /// large or broke off). A probe's slot is freed, nothing is counted.
        case neutral
    }

    /// A permission to send one request.
    public struct Admission: Sendable {
        /// Set for a half-open probe.
        let probe: UInt64?
    }

    private struct State {
        var breaker = BreakerState.closed
        var consecutiveFailures = 0
        var openUntil = NIODeadline.uptimeNanoseconds(0)
        /// Consecutive openings without a close in between (for backoff).
        var openings = 0
        var probes: [UInt64: NIODeadline] = [:]
        var nextProbe: UInt64 = 1
        var window: FailureWindow?
        var healthy = true
        var checkStreak = 0
        var outstanding = 0
        var breakerConfig: CircuitBreakerConfig?
        /// How long a probe may hold its half-open slot.
        var probeDeadline: TimeAmount
    }

    private let state: NIOLockedValueBox<State>

    public init(breaker: CircuitBreakerConfig?, probeDeadline: TimeAmount) {
        state = NIOLockedValueBox(State(breakerConfig: breaker, probeDeadline: probeDeadline))
        reconfigure(breaker: breaker, probeDeadline: probeDeadline, activeCheck: true)
    }

    /// A reload changed the group's settings: the state is kept, the new limits apply from the
    /// next request. Without a breaker the target is closed for good; without an active check
    /// nothing can find it healthy again, so it is healthy.
    public func reconfigure(breaker: CircuitBreakerConfig?, probeDeadline: TimeAmount, activeCheck: Bool) {
        state.withLockedValue { s in
            if !activeCheck {
                s.healthy = true
                s.checkStreak = 0
            }
            if s.breakerConfig?.failureRate != breaker?.failureRate || s.window == nil {
                s.window = breaker?.failureRate.map { FailureWindow($0) }
            }
            s.breakerConfig = breaker
            s.probeDeadline = probeDeadline
            if breaker == nil {
                s.breaker = .closed
                s.probes.removeAll()
                s.consecutiveFailures = 0
            }
        }
    }

    /// Whether a request could be admitted now (without admitting it).
    public func isAvailable(at now: NIODeadline) -> Bool {
        state.withLockedValue { s in
            guard s.healthy else { return false }
            switch s.breaker {
            case .closed: return true
            case .open: return now >= s.openUntil
            case .halfOpen: return liveProbes(&s, now) < (s.breakerConfig?.halfOpenMax ?? 1)
            }
        }
    }

    /// Admits one request, or nil when the breaker (or the health check) says no.
    public func admit(at now: NIODeadline) -> Admission? {
        state.withLockedValue { s in
            guard s.healthy else { return nil }
            if s.breaker == .open {
                guard now >= s.openUntil else { return nil }
                s.breaker = .halfOpen
            }
            if s.breaker == .halfOpen {
                guard liveProbes(&s, now) < (s.breakerConfig?.halfOpenMax ?? 1) else { return nil }
                let id = s.nextProbe
                s.nextProbe += 1
                s.probes[id] = now + s.probeDeadline
                s.outstanding += 1
                return Admission(probe: id)
            }
            s.outstanding += 1
            return Admission(probe: nil)
        }
    }

    /// Reports how an admitted request went.
    public func record(_ admission: Admission, _ outcome: Outcome, at now: NIODeadline) {
        state.withLockedValue { s in
            s.outstanding -= 1
            guard let breaker = s.breakerConfig else { return }
            if let probe = admission.probe {
                // A probe that outlived its deadline no longer speaks for the target.
                guard s.probes.removeValue(forKey: probe) != nil, s.breaker == .halfOpen else { return }
                switch outcome {
                case .success: close(&s)
                case .failure: open(&s, breaker, now)
                case .neutral: break
                }
                return
            }
            guard s.breaker == .closed else { return } // admitted before the breaker opened
            switch outcome {
            case .success:
                s.consecutiveFailures = 0
                s.window?.add(failure: false, at: now)
            case .failure:
                s.consecutiveFailures += 1
                s.window?.add(failure: true, at: now)
                if s.consecutiveFailures >= breaker.threshold || s.window?.tripped(at: now) == true {
                    open(&s, breaker, now)
                }
            case .neutral:
                break
            }
        }
    }

    /// Reports an active check's result; returns the health afterwards.
    @discardableResult
    public func recordCheck(ok: Bool, check: ActiveHealthCheck) -> Bool {
        state.withLockedValue { s in
            if ok == s.healthy {
                s.checkStreak = 0
            } else {
                s.checkStreak += 1
                if s.checkStreak >= (ok ? check.healthyThreshold : check.unhealthyThreshold) {
                    s.healthy = ok
                    s.checkStreak = 0
                    }
            }
            return s.healthy
        }
    }

    /// Requests in flight to the target.
    public var outstanding: Int { state.withLockedValue { $0.outstanding } }

    /// When an open breaker will let a probe through (nil when it is not open).
    public func reopensIn(at now: NIODeadline) -> TimeAmount? {
        state.withLockedValue { s in
            guard s.breaker == .open, s.openUntil > now else { return nil }
            return s.openUntil - now
        }
    }

    /// A snapshot for scripts and the admin endpoint.
    public struct Report: Sendable, Equatable {
        public var breaker: BreakerState
        public var healthy: Bool
        public var consecutiveFailures: Int
        public var outstanding: Int
    }

    public func report(at now: NIODeadline) -> Report {
        state.withLockedValue { s in
            var breaker = s.breaker
            if breaker == .open && now >= s.openUntil { breaker = .halfOpen }
            return Report(breaker: breaker, healthy: s.healthy, consecutiveFailures: s.consecutiveFailures, outstanding: s.outstanding)
        }
    }

    // MARK: Transitions (under the lock)

    private func liveProbes(_ s: inout State, _ now: NIODeadline) -> Int {
        if s.probes.values.contains(where: { $0 <= now }) { s.probes = s.probes.filter { $0.value > now } }
        return s.probes.count
    }

    private func open(_ s: inout State, _ breaker: CircuitBreakerConfig, _ now: NIODeadline) {
        s.openings += 1
        let base = Int64(breaker.openMilliseconds)
        let time = min(base * Int64(s.openings), Int64(breaker.maxOpenMilliseconds))
        s.breaker = .open
        s.openUntil = now + .milliseconds(time)
        s.probes.removeAll()
        s.consecutiveFailures = 0
        s.window?.reset()
    }

    private func close(_ s: inout State) {
        s.breaker = .closed
        s.openings = 0
        s.consecutiveFailures = 0
        s.probes.removeAll()
        s.window?.reset()
    }
}

/// Requests and failures over a sliding window, in ten buckets.
struct FailureWindow {
    private let config: CircuitBreakerConfig.FailureRate
    private let bucketNanos: Int64
    private var buckets: [(start: Int64, total: Int, failures: Int)]

    init(_ config: CircuitBreakerConfig.FailureRate) {
        self.config = config
        bucketNanos = max(1, Int64(config.windowMilliseconds) * 1_000_000 / 10)
        buckets = Array(repeating: (start: -1, total: 0, failures: 0), count: 10)
    }

    mutating func add(failure: Bool, at now: NIODeadline) {
        let slot = Int64(now.uptimeNanoseconds) / bucketNanos
        let index = Int(slot % 10)
        if buckets[index].start != slot { buckets[index] = (slot, 0, 0) }
        buckets[index].total += 1
        if failure { buckets[index].failures += 1 }
    }

    func tripped(at now: NIODeadline) -> Bool {
        let slot = Int64(now.uptimeNanoseconds) / bucketNanos
        var total = 0, failures = 0
        for b in buckets where b.start >= 0 && slot - b.start < 10 {
            total += b.total
            failures += b.failures
        }
        return total >= config.minimumRequests && Double(failures) >= config.rate * Double(total)
    }

    mutating func reset() {
        for i in buckets.indices { buckets[i] = (-1, 0, 0) }
    }
}
