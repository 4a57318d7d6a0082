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

        public init(requestsPerMinute: Int, burst: Int) {
            self.requestsPerMinute = max(1, requestsPerMinute)
            self.burst = max(1, burst)
        }

        var interval: Duration { .nanoseconds(60_000_000_000 / Int64(requestsPerMinute)) }
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
        var arrival: [String: ContinuousClock.Instant] = [:]
        var operations = 0
    }

    private let shards: [NIOLockedValueBox<Shard>]
    private let clock: ServiceClock

    public init(clock: ServiceClock, shards count: Int = 16) {
        self.clock = clock
        shards = (0..<count).map { _ in NIOLockedValueBox(Shard()) }
    }

    /// Checks one request of `key` against `limit` and, when it passes, counts it.
    public func check(_ key: String, _ limit: Limit) -> Decision {
        let now = clock.now
        let t = limit.interval
        let tolerance = t * limit.burst
        return shards[shardIndex(key)].withLockedValue { shard in
            shard.operations += 1
            if shard.operations % 4096 == 0 { shard.arrival = shard.arrival.filter { $0.value > now } }
            let tat = max(shard.arrival[key] ?? now, now)
            let next = tat + t
            if next - now > tolerance {
                // Refused: the bucket stays as it was.
                let wait = next - now - tolerance
                return Decision(allowed: false, remaining: 0, reset: wait, retryAfter: wait)
            }
            shard.arrival[key] = next
            let ahead = next - now
            let remaining = Int((tolerance - ahead) / t)
            return Decision(allowed: true, remaining: remaining, reset: ahead, retryAfter: nil)
        }
    }

    /// Keys currently held (buckets not full), for tests and the admin view.
    public var count: Int {
        let now = clock.now
        return shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.arrival.values.filter { $0 > now }.count } }
    }

    private func shardIndex(_ key: String) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(h % UInt64(shards.count))
    }
}
