import NIOConcurrencyHelpers

/// Exact rate limits by GCRA (the generic cell rate algorithm: a token bucket kept as one
/// number, the theoretical arrival time, per key), shared by every event loop of the process and
/// kept across reloads.
///
/// With `rpm` requests per minute the emission interval is T = 60 s / rpm. A key that has been
/// idle may send `burst` requests at once, then one per T: a request is allowed when, after it,
/// the key's arrival time is at most `burst × T` ahead of now. A refused request changes
/// nothing. A key whose arrival time has passed holds no information (its bucket is full) and
/// is dropped by a sweep, so idle keys vanish.
public final class RateLimitStore: Sendable {
    /// The limit applied to one request.
    public struct Limit: Sendable, Equatable {
        public var requestsPerMinute: Int
        public var burst: Int

        /// The largest values accepted (config and Lua check them; beyond, the arithmetic
        /// could overflow).
        public static let maxRequestsPerMinute = 6_000_000
        public static let maxBurst = 1_000_000

        public init(requestsPerMinute: Int, burst: Int) {
            self.requestsPerMinute = min(max(1, requestsPerMinute), Self.maxRequestsPerMinute)
            self.burst = min(max(1, burst), Self.maxBurst)
        }

        /// T in nanoseconds (at least 10 µs); T × burst stays below 10^17.
        var intervalNanoseconds: Int64 { 60_000_000_000 / Int64(requestsPerMinute) }
    }

    /// What one check decided.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// Requests the key may still send at once after this one.
        public var remaining: Int
        /// Until the bucket is full again (allowed) or until a request would pass (refused).
        public var reset: Duration
        /// For a refused request: when to try again.
        public var retryAfter: Duration?
    }

    private struct Shard {
        /// Theoretical arrival time per key, in nanoseconds since the store's epoch.
        var arrival: [String: Int64] = [:]
        var lastSweep: Int64 = 0
    }

    /// Entries a shard holds before it is swept at once (beyond the sweep every 10 s).
    static let sweepAbove = 65_536

    private let shards: [NIOLockedValueBox<Shard>]
    private let clock: ServiceClock
    private let epoch: ContinuousClock.Instant

    public init(clock: ServiceClock, shards count: Int = 16) {
        self.clock = clock
        epoch = clock.now
        shards = (0..<count).map { _ in NIOLockedValueBox(Shard()) }
    }

    private var nowNanoseconds: Int64 {
        let (s, atto) = (clock.now - epoch).components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// Checks one request of `key` against `limit` and, when it passes, counts it.
    public func check(_ key: String, _ limit: Limit) -> Decision {
        let now = nowNanoseconds
        let t = limit.intervalNanoseconds
        let tolerance = t * Int64(limit.burst)
        // A client-chosen key (a header) is stored as a digest beyond a length.
        let key = key.utf8.count > 200 ? "#" + String(Self.fnv(key), radix: 16) + ":" + String(key.utf8.count) : key
        return shards[shardIndex(key)].withLockedValue { shard in
            if now - shard.lastSweep > 10_000_000_000 || shard.arrival.count > Self.sweepAbove {
                // Full buckets hold nothing: dropped.
                shard.arrival = shard.arrival.filter { $0.value > now }
                shard.lastSweep = now
            }
            let tat = max(shard.arrival[key] ?? now, now)
            let next = tat + t
            if next - now > tolerance {
                // Refused: the bucket stays as it was.
                let wait = Duration.nanoseconds(next - now - tolerance)
                return Decision(allowed: false, remaining: 0, reset: wait, retryAfter: wait)
            }
            shard.arrival[key] = next
            let ahead = next - now
            return Decision(allowed: true, remaining: Int((tolerance - ahead) / t), reset: .nanoseconds(ahead), retryAfter: nil)
        }
    }

    /// Keys currently held (buckets not full), for tests and the admin view.
    public var count: Int {
        let now = nowNanoseconds
        return shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.arrival.values.filter { $0 > now }.count } }
    }

    private func shardIndex(_ key: String) -> Int {
        Int(Self.fnv(key) % UInt64(shards.count))
    }

    static func fnv(_ key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }
}
