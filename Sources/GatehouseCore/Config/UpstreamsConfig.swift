public import HTTPTypes

/// `config/upstreams.json`: named groups of backends and the path-routing table of
/// `coreGroups` / `cores`. Validated and immutable, like the rest of ``GatewayConfig``.
public struct UpstreamsConfig: Sendable {
    /// Every group in file order: `groups`, then one per `coreGroups` entry, then one per
    /// legacy `cores` entry.
    public var groups: [UpstreamGroupConfig]
    /// Request path → group and upstream path, from `coreGroups` routes and `cores`.
    public var pathRoutes: ProxyRouteTable
    /// The file it came from, for messages.
    public var file: String

    public init(groups: [UpstreamGroupConfig] = [], pathRoutes: ProxyRouteTable = ProxyRouteTable(), file: String = GatewayConfig.upstreamsFile) {
        self.groups = groups
        self.pathRoutes = pathRoutes
        self.file = file
    }

    public func group(named name: String) -> UpstreamGroupConfig? {
        groups.first { $0.name == name }
    }
}

/// One named group of interchangeable backends.
public struct UpstreamGroupConfig: Sendable, Equatable {
    public var name: String
    public var targets: [UpstreamTargetConfig]
    /// Per-group overrides of `connectTimeoutMs` / `upstreamTimeoutMs` (nil: the global ones).
    public var connectTimeoutMilliseconds: Int?
    public var responseTimeoutMilliseconds: Int?
    public var loadBalancing: LoadBalancing
    /// nil when the group says `"circuitBreaker": false`.
    public var circuitBreaker: CircuitBreakerConfig?
    /// Upstream answers that count as a target's failure (never a 4xx).
    public var failureStatuses: Set<Int>
    public var activeCheck: ActiveHealthCheck?
    /// Answers on which an idempotent request is retried once on another target (as nginx's
    /// `proxy_next_upstream http_503`); none by default: only a failure before any answer is.
    public var retryStatuses: Set<Int> = []
    /// Where the group is declared, for messages.
    public var location: ConfigError

    public init(
        name: String, targets: [UpstreamTargetConfig], connectTimeoutMilliseconds: Int? = nil, responseTimeoutMilliseconds: Int? = nil,
        loadBalancing: LoadBalancing = .roundRobin, circuitBreaker: CircuitBreakerConfig? = CircuitBreakerConfig(),
        failureStatuses: Set<Int> = UpstreamGroupConfig.defaultFailureStatuses, activeCheck: ActiveHealthCheck? = nil,
        location: ConfigError = ConfigError(file: "", message: "")
    ) {
        self.name = name
        self.targets = targets
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.responseTimeoutMilliseconds = responseTimeoutMilliseconds
        self.loadBalancing = loadBalancing
        self.circuitBreaker = circuitBreaker
        self.failureStatuses = failureStatuses
        self.activeCheck = activeCheck
        self.location = location
    }

    public static let defaultFailureStatuses: Set<Int> = [502, 503, 504]
}

/// One backend of a group.
public struct UpstreamTargetConfig: Sendable, Equatable, Hashable {
    /// `http(s)://host[:port][/base/path]`, without a trailing `/`.
    public var url: String
    /// Share of the group's traffic within its tier (round robin, least outstanding, hashing).
    public var weight: Int
    /// Tier: 1 is served first; a higher tier only while every target of the lower ones is
    /// open or unhealthy.
    public var priority: Int

    public init(url: String, weight: Int = 1, priority: Int = 1) {
        self.url = url
        self.weight = weight
        self.priority = priority
    }
}

/// How a group spreads requests over the available targets of its best tier.
public enum LoadBalancing: Sendable, Equatable {
    /// Weighted round robin (smooth: a weight-3 target is not sent three in a row).
    case roundRobin
    /// The target with the fewest requests in flight relative to its weight.
    case leastOutstanding
    /// The same key always goes to the same target while it is available; adding a target
    /// moves only about 1/N of the keys.
    case consistentHash(HashKey)
}

/// What a consistent-hash group hashes.
public enum HashKey: Sendable, Equatable {
    /// A request header (`header:x-tenant-id`).
    case header(HTTPField.Name)
    /// The authenticated consumer's `sub` (`consumer`).
    case consumer
    /// The client's address (`client-ip`).
    case clientAddress
    /// A value a policy put in `context.custom` (`custom:tenant`).
    case custom(String)
}

/// A breaker per target, seed 003's shape: `threshold` consecutive failures open it; after
/// `timeout` ms it lets `halfOpenMax` probe requests through; a probe's success closes it, a
/// failure opens it again.
public struct CircuitBreakerConfig: Sendable, Equatable {
    public var threshold: Int
    /// How long a breaker stays open before probing, in milliseconds.
    public var openMilliseconds: Int
    public var halfOpenMax: Int
    /// With backoff, the open time grows with each consecutive opening (timeout × openings)
    /// up to this; equal to `openMilliseconds` means no backoff.
    public var maxOpenMilliseconds: Int
    /// Optional second trigger: the failure rate over a sliding window.
    public var failureRate: FailureRate?

    public init(threshold: Int = 5, openMilliseconds: Int = 30_000, halfOpenMax: Int = 3, maxOpenMilliseconds: Int? = nil, failureRate: FailureRate? = nil) {
        self.threshold = threshold
        self.openMilliseconds = openMilliseconds
        self.halfOpenMax = halfOpenMax
        self.maxOpenMilliseconds = maxOpenMilliseconds ?? openMilliseconds
        self.failureRate = failureRate
    }

    /// Opens the breaker when at least `minimumRequests` ended in the last `windowMilliseconds`
    /// and the share of failures among them reached `rate`.
    public struct FailureRate: Sendable, Equatable {
        public var rate: Double
        public var windowMilliseconds: Int
        public var minimumRequests: Int

        public init(rate: Double, windowMilliseconds: Int, minimumRequests: Int) {
            self.rate = rate
            self.windowMilliseconds = windowMilliseconds
            self.minimumRequests = minimumRequests
        }
    }
}

/// A probe the gateway sends to every target of a group on its own, so a target is taken out
/// before requests fail on it and put back when it recovers.
public struct ActiveHealthCheck: Sendable, Equatable {
    /// Path (and query) of the probe, e.g. `/health`.
    public var path: String
    public var intervalMilliseconds: Int
    public var timeoutMilliseconds: Int
    /// Consecutive good probes that make an unhealthy target healthy again.
    public var healthyThreshold: Int
    /// Consecutive bad probes that make a healthy target unhealthy.
    public var unhealthyThreshold: Int

    public init(path: String, intervalMilliseconds: Int = 5000, timeoutMilliseconds: Int = 1000, healthyThreshold: Int = 2, unhealthyThreshold: Int = 3) {
        self.path = path
        self.intervalMilliseconds = intervalMilliseconds
        self.timeoutMilliseconds = timeoutMilliseconds
        self.healthyThreshold = healthyThreshold
        self.unhealthyThreshold = unhealthyThreshold
    }
}
