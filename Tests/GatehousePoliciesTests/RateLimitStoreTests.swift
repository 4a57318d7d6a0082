import GatehousePolicies
import Testing

/// GCRA with a manual clock: no sleeping, no timing assertions.
@Suite struct RateLimitStoreTests {
    @Test func exactlyBurstPassAtOnceThenOnePerInterval() {
        let clock = ServiceClock.manual()
        let store = RateLimitStore(clock: clock)
        let limit = RateLimitStore.Limit(requestsPerMinute: 100, burst: 10) // one per 0.6 s
        for i in 0..<10 {
            let d = store.check("t", limit)
            #expect(d.allowed, "request \(i) of the burst")
            #expect(d.remaining == 9 - i)
        }
        let refused = store.check("t", limit)
        #expect(!refused.allowed)
        #expect(refused.retryAfter == .milliseconds(600))
        // Refused requests do not move the bucket: after 0.6 s exactly one more passes.
        for _ in 0..<5 { #expect(!store.check("t", limit).allowed) }
        clock.advance(by: .milliseconds(599))
        #expect(!store.check("t", limit).allowed)
        clock.advance(by: .milliseconds(1))
        #expect(store.check("t", limit).allowed)
        #expect(!store.check("t", limit).allowed)
        // Other keys have their own bucket.
        #expect(store.check("u", limit).allowed)
    }

    @Test func remainingIsExactForAwkwardIntervals() {
        let clock = ServiceClock.manual()
        let store = RateLimitStore(clock: clock)
        for limit in [RateLimitStore.Limit(requestsPerMinute: 7, burst: 100), RateLimitStore.Limit(requestsPerMinute: 1, burst: 300)] {
            let key = "k\(limit.requestsPerMinute)"
            for i in 0..<limit.burst {
                let d = store.check(key, limit)
                #expect(d.allowed && d.remaining == limit.burst - 1 - i, "\(limit) #\(i): \(d.remaining)")
            }
            #expect(!store.check(key, limit).allowed)
        }
    }

    @Test func theLargestLimitsDoNotOverflow() {
        let store = RateLimitStore(clock: .manual())
        let huge = RateLimitStore.Limit(requestsPerMinute: 1, burst: .max)
        #expect(huge.burst == RateLimitStore.Limit.maxBurst, "clamped")
        #expect(store.check("h", huge).allowed)
        let fast = RateLimitStore.Limit(requestsPerMinute: .max, burst: .max)
        #expect(store.check("f", fast).remaining == RateLimitStore.Limit.maxBurst - 1)
    }

    @Test func anIdleKeyRefillsAndVanishes() {
        let clock = ServiceClock.manual()
        let store = RateLimitStore(clock: clock)
        let limit = RateLimitStore.Limit(requestsPerMinute: 60, burst: 3)
        for _ in 0..<3 { _ = store.check("t", limit) }
        #expect(store.check("t", limit).allowed == false)
        #expect(store.count == 1)
        let full = store.check("x", limit)
        #expect(full.reset == .seconds(1), "one request in: full again after one interval")
        clock.advance(by: .seconds(3))
        #expect(store.count == 0, "a full bucket holds nothing")
        for _ in 0..<3 { #expect(store.check("t", limit).allowed) }
        #expect(!store.check("t", limit).allowed)
    }

    @Test func sustainedRateIsExact() {
        let clock = ServiceClock.manual()
        let store = RateLimitStore(clock: clock)
        let limit = RateLimitStore.Limit(requestsPerMinute: 1200, burst: 5) // one per 50 ms
        var allowed = 0
        // A client sending every 10 ms for 60 s gets the burst plus one per 50 ms.
        for _ in 0..<6000 {
            if store.check("t", limit).allowed { allowed += 1 }
            clock.advance(by: .milliseconds(10))
        }
        #expect(allowed == 1200 + 4 || allowed == 1200 + 5, "\(allowed)")
    }
}
