import GatehouseCore
import GatehouseLua

/// Host functions behind `ratelimit.check(key, { rpm, burst, store })`: the same GCRA stores
/// as `rate-limit-inbound` (the process-wide one, kept across reloads, or Redis), in a key
/// space of their own.
extension PolicyRuntime {
    func rateLimitAPI() -> [(String, HostFunction)] {
        [
            // ratelimit_check(key, rpm, burst) -> allowed, remaining, retryAfterSeconds
            ("ratelimit_check", { [unowned self] L in self.rateLimitCheck(L, redisStore: false) }),
            // The same in Redis: yields; nil, err when Redis cannot answer.
            ("ratelimit_check_redis", { [unowned self] L in self.rateLimitCheck(L, redisStore: true) }),
        ]
    }

    private func rateLimitCheck(_ L: LuaState, redisStore: Bool) -> HostResult {
        guard let key = L.toString(at: 1), !key.isEmpty else { return .badArgument(1, "check", expected: "a key string", state: L) }
        guard let rpm = L.toInteger(at: 2), rpm > 0, rpm <= RateLimitStore.Limit.maxRequestsPerMinute else {
            return .error("ratelimit.check: rpm must be a whole number from 1 to \(RateLimitStore.Limit.maxRequestsPerMinute)")
        }
        let burst = L.toInteger(at: 3) ?? 1
        guard burst > 0, burst <= RateLimitStore.Limit.maxBurst else {
            return .error("ratelimit.check: burst must be a whole number from 1 to \(RateLimitStore.Limit.maxBurst)")
        }
        let limit = RateLimitStore.Limit(requestsPerMinute: Int(rpm), burst: Int(burst))
        if redisStore {
            if let refusal = self.refuseWait(L, "ratelimit.check") { return refusal }
            guard self.redis != nil else {
                return .error("ratelimit.check: store \"redis\" needs a Redis store: add \"redis\": { \"url\": \"redis://127.0.0.1:6379\" } to gatehouse.json")
            }
            self.current!.pending = .redisRateLimit(key: key, limit: limit)
            return .yield
        }
        let decision = self.services.rateLimits.check("l\u{0}" + key, limit)
        L.push(decision.allowed)
        L.push(Int64(decision.remaining))
        L.push(decision.retryAfter.map { RateLimitInbound.seconds($0) } ?? 0)
        return .values(3)
    }
}
