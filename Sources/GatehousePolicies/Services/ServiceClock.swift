import NIOConcurrencyHelpers

/// The time the process-wide services (zone caches, loaders, the JWKS cache) read for TTLs and
/// refresh intervals. The system clock in production; a manual one in tests, which advance it
/// instead of sleeping past a TTL (a sleep is slow and, on a loaded machine, a flake).
public final class ServiceClock: Sendable {
    private let offset: NIOLockedValueBox<Duration>?
    private let start = ContinuousClock.now

    private init(manual: Bool) {
        offset = manual ? NIOLockedValueBox(.zero) : nil
    }

    /// Real time.
    public static let system = ServiceClock(manual: false)

    /// A clock that starts at the real time now and moves only when ``advance(by:)`` is called.
    public static func manual() -> ServiceClock { ServiceClock(manual: true) }

    public var now: ContinuousClock.Instant {
        guard let offset else { return .now }
        return start + offset.withLockedValue { $0 }
    }

    /// Moves a manual clock forward (does nothing to the system clock).
    public func advance(by duration: Duration) {
        offset?.withLockedValue { $0 += duration }
    }
}
