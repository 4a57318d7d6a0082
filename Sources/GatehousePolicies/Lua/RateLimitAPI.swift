import GatehouseCore
import GatehouseLua

/// Host function behind `ratelimit.check(key, { rpm, burst })`: the same GCRA store as
/// `rate-limit-inbound` (process-wide, kept across reloads), in a key space of its own.
extension PolicyRuntime {
    func rateLimitAPI() -> [(String, HostFunction)] {
        [
            // ratelimit_check(key, rpm, burst) -> allowed, remaining, retryAfterSeconds
            ("ratelimit_check", { [unowned self] L in
                guard let key = L.toString(at: 1), !key.isEmpty else { return .badArgument(1, "check", expected: "a key string", state: L) }
                guard let rpm = L.toInteger(at: 2), rpm > 0, rpm <= RateLimitStore.Limit.maxRequestsPerMinute else {
                    return .error("ratelimit.check: rpm must be a whole number from 1 to \(RateLimitStore.Limit.maxRequestsPerMinute)")
                }
                let burst = L.toInteger(at: 3) ?? 1
                guard burst > 0, burst <= RateLimitStore.Limit.maxBurst else {
                    return .error("ratelimit.check: burst must be a whole number from 1 to \(RateLimitStore.Limit.maxBurst)")
                }
                let decision = self.services.rateLimits.check("l\u{0}" + key, .init(requestsPerMinute: Int(rpm), burst: Int(burst)))
                L.push(decision.allowed)
                L.push(Int64(decision.remaining))
                L.push(decision.retryAfter.map { RateLimitInbound.seconds($0) } ?? 0)
                return .values(3)
            }),
        ]
    }
}
