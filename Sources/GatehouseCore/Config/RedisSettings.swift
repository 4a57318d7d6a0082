/// The `redis` object of `gatehouse.json`: the store behind `rate-limit-inbound`'s `mode:
/// "redis"` and `cache.zone(name, { store = "redis" })`.
///
/// ```json
/// "redis": { "url": "$env(REDIS_URL)", "connectTimeoutMs": 1000, "commandTimeoutMs": 250 }
/// ```
/// The URL (`redis://[[user]:password@]host[:port][/db]` or `rediss://…`) is checked when the
/// configuration loads, where its errors point back at this file.
public struct RedisSettings: Sendable, Equatable {
    public var url: String
    public var connectTimeoutMilliseconds: Int = 1_000
    /// A command without a reply after this long fails (and the store counts as unavailable for
    /// that request), so a slow or unreachable Redis costs a request at most this much (a
    /// command waiting for a connection included), not its own timeout.
    public var commandTimeoutMilliseconds: Int = 250
    /// PEM file of CA certificates for `rediss://` (resolved against the config directory).
    public var caFile: String?
    public var tlsVerify = true
    /// Where `url` was written, for errors found when it is parsed.
    public var urlLocation: ConfigError

    public init(url: String, urlLocation: ConfigError) {
        self.url = url
        self.urlLocation = urlLocation
    }
}
