public import GatehouseCore
public import GatehouseRedis
public import HTTPTypes
public import Logging
public import NIOCore
import NIOConcurrencyHelpers

/// Process-wide services behind the Lua `cache`, `loader` and `http` modules. Created once per
/// server and kept across reloads, so caches and loaded values survive a reload.
public final class RuntimeServices: Sendable {
    public let fetcher: (any HTTPFetching)?
    /// Behind the Lua `upstreams` table (nil: no groups, as in `gatehouse test`).
    public let upstreams: (any UpstreamDirectory)?
    private let zones = NIOLockedValueBox<[String: ZoneCache]>([:])
    let loaders: LoaderRegistry
    let jwks: JWKSCache
    /// Rate-limit counters, by policy name and tenant (never by generation: reloads keep them).
    public let rateLimits: RateLimitStore
    /// What the caches and loaders read the time from (a manual clock in tests).
    public let clock: ServiceClock
    /// Redis clients by configuration: a reload with the same `redis` settings keeps its
    /// connections; one with new settings gets a new client (the old one stays for requests of
    /// the previous snapshot still running, and is closed at shutdown).
    private let redisClients = NIOLockedValueBox<[RedisConfiguration: RedisClient]>([:])
    private let healthLogs = NIOLockedValueBox<[String: StoreHealthLog]>([:])

    public init(fetcher: (any HTTPFetching)?, upstreams: (any UpstreamDirectory)? = nil, clock: ServiceClock = .system) {
        self.fetcher = fetcher
        self.upstreams = upstreams
        self.clock = clock
        loaders = LoaderRegistry(clock: clock)
        jwks = JWKSCache(clock: clock)
        rateLimits = RateLimitStore(clock: clock)
    }

    /// The Redis client for `settings`, made on first use (it connects lazily, per event loop).
    public func redisClient(_ settings: RedisSettings, loops: [any EventLoop], logger: Logger) throws(ConfigError) -> RedisClient {
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: settings.url)
        } catch {
            var location = settings.urlLocation
            location.message = "redis.url: \(error.description)"
            throw location
        }
        configuration.connectTimeout = .milliseconds(settings.connectTimeoutMilliseconds)
        configuration.commandTimeout = .milliseconds(settings.commandTimeoutMilliseconds)
        configuration.caFile = settings.caFile
        configuration.tlsVerify = settings.tlsVerify
        return redisClients.withLockedValue { clients in
            if let client = clients[configuration] { return client }
            let client = RedisClient(configuration: configuration, loops: loops, logger: logger)
            clients[configuration] = client
            return client
        }
    }

    /// The transition log of one store user (a policy), kept across reloads.
    func healthLog(_ name: String) -> StoreHealthLog {
        healthLogs.withLockedValue { logs in
            if let log = logs[name] { return log }
            let log = StoreHealthLog()
            logs[name] = log
            return log
        }
    }

    /// Closes the Redis connections (at server shutdown).
    public func shutdown() {
        for client in redisClients.withLockedValue({ Array($0.values) }) { client.shutdown() }
    }

    /// The zone named `name`, created with these bounds on first use.
    public func zone(_ name: String, maxEntries: Int = 10_000, maxBytes: Int = 16 << 20) -> ZoneCache {
        zones.withLockedValue { zones in
            if let zone = zones[name] { return zone }
            let zone = ZoneCache(name: name, maxEntries: maxEntries, maxBytes: maxBytes, clock: clock)
            zones[name] = zone
            return zone
        }
    }
}

/// An outgoing HTTP call made by a policy (`http.fetch`).
public struct FetchRequest: Sendable {
    public var url: String
    public var method: HTTPRequest.Method
    public var headers: HTTPFields
    public var body: String?
    public var timeout: Duration
    /// An upstream group to fetch from (`url` is then the path): its balancing, breakers and
    /// failover apply.
    public var upstream: String?

    public init(url: String, method: HTTPRequest.Method, headers: HTTPFields, body: String?, timeout: Duration, upstream: String? = nil) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.upstream = upstream
    }
}

/// What scripts may know about the upstream groups (the Lua `upstreams` table).
public protocol UpstreamDirectory: Sendable {
    /// Group names in config order.
    var groupNames: [String] { get }
    /// A group's live state (see docs/lua-api.md, `upstreams.get`), nil for no such group.
    func state(of group: String) -> JSONValue?
}

/// Performs `http.fetch`: the whole response, body read, or a message saying what failed.
public protocol HTTPFetching: Sendable {
    func fetch(_ request: FetchRequest, maxBodyBytes: Int) async -> Result<ResponseState, FetchFailure>
}

/// Why a fetch failed, in words a policy can log (no internals beyond the URL it asked for).
public struct FetchFailure: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}
