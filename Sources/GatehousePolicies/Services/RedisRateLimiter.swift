public import GatehouseRedis

/// GCRA in Redis, for `rate-limit-inbound` with `mode: "redis"` (and `ratelimit.check` with
/// `store = "redis"`): the check and the update are one server-side script, so any number of
/// gateway processes sharing the server count every tenant exactly once per request. One round
/// trip per check (`EVALSHA`; the script body is sent again only after `NOSCRIPT`).
///
/// The script reads the time from Redis (`TIME`), so the gateways' clocks never matter, keeps
/// the theoretical arrival time in microseconds (exact in a Lua 5.1 double until the year
/// 2255), and sets the key to expire when its bucket is full again: idle tenants vanish.
public struct RedisRateLimiter: Sendable {
    let client: RedisClient

    public init(client: RedisClient) {
        self.client = client
    }

    static let script = RedisScript("""
        -- gatehouse GCRA: KEYS[1] holds the arrival time (us); ARGV[1] the interval T (us), ARGV[2] the burst
        if redis.replicate_commands then redis.replicate_commands() end -- TIME before a write (Redis < 5)
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local t = tonumber(ARGV[1])
        local tolerance = t * tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1])) or now
        if tat < now then tat = now end
        local ahead = tat + t - now
        if ahead > tolerance then return {0, 0, ahead - tolerance} end
        redis.call('SET', KEYS[1], string.format('%.0f', tat + t), 'PX', math.ceil(ahead / 1000))
        return {1, math.floor((tolerance - ahead) / t), ahead}
        """)

    /// The Redis key of a tenant under a scope (`p:<policy>` for a policy, `lua` for
    /// `ratelimit.check`): `gh:rl:{tenant}:scope`. The hash tag keeps all
    /// of a tenant's limits in one Redis Cluster slot; `{`, `}` and `%` in the tenant are
    /// escaped so no tenant can end the tag early and collide with another key, and a long
    /// tenant is stored as a digest.
    static func key(tenant: String, scope: String) -> String {
        var escaped = ""
        for c in tenant.unicodeScalars {
            switch c {
            case "{": escaped += "%7B"
            case "}": escaped += "%7D"
            case "%": escaped += "%25"
            default: escaped.unicodeScalars.append(c)
            }
        }
        if escaped.utf8.count > 200 { escaped = "#" + String(RateLimitStore.fnv(tenant), radix: 16) + ":" + String(tenant.utf8.count) }
        return "gh:rl:{" + escaped + "}:" + scope
    }

    /// Checks one request of `tenant` against `limit` under `scope`, counting it when it passes.
    /// The interval is 60/rpm seconds in whole microseconds, rounded down (for rpm up to
    /// 100,000 at most 0.17% faster than asked; the burst is exact).
    public func check(tenant: String, scope: String, _ limit: RateLimitStore.Limit) async -> Result<RateLimitStore.Decision, RedisError> {
        let interval = 60_000_000 / limit.requestsPerMinute
        let reply: RedisValue
        do {
            reply = try await client.run(Self.script, keys: [Self.key(tenant: tenant, scope: scope)], arguments: [String(interval), String(limit.burst)])
        } catch {
            return .failure(error)
        }
        if case .error(let message) = reply { return .failure(.server(message)) }
        guard let items = reply.array, items.count == 3, let allowed = items[0].integer, let remaining = items[1].integer, let micros = items[2].integer else {
            return .failure(.protocolError("unexpected reply from the rate-limit script: \(reply)"))
        }
        let wait = Duration.microseconds(micros)
        return .success(allowed == 1
            ? RateLimitStore.Decision(allowed: true, remaining: Int(remaining), reset: wait, retryAfter: nil)
            : RateLimitStore.Decision(allowed: false, remaining: 0, reset: wait, retryAfter: wait))
    }
}
