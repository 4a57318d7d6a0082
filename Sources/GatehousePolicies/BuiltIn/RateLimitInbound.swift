import Foundation
public import GatehouseCore
public import HTTPTypes
public import Logging

/// `rate-limit-inbound`: per-tenant limits with tiers (seed 003), exact by GCRA in a
/// process-wide store (``RateLimitStore``) whose counters are keyed by policy name and tenant,
/// so a reload never resets them.
///
/// Options: `rateLimitBy` (`user`, `ip`, `header`), `headerName` (for `header`),
/// `trustedProxies` (CIDRs whose `X-Forwarded-For` is believed, for `ip`), `tiers`
/// (`name → { rpm, burst }`), `tierFrom` (a dotted path into `request.user`, e.g. `data.tier`),
/// `defaultTier`, `mode` (`local`, or `redis`: counted in the Redis of gatehouse.json, exact
/// across gateway processes), `onStoreFailure` (`local`, `allow` or `deny`: what a request
/// gets while Redis is unreachable), `headers` (the `RateLimit-*` headers on every answer,
/// default true). A refused request is a 429 problem naming the limit (never the key) with
/// `Retry-After`.
public struct RateLimitInbound: Sendable {
    public let name: String
    let by: Key
    let tiers: [String: RateLimitStore.Limit]
    let tierPath: [String]?
    let defaultTier: String
    let headers: Bool
    let client: ClientAddress
    let store: RateLimitStore
    let mode: Mode
    let logger: Logger

    /// Where the counters live.
    enum Mode: Sendable {
        case local
        case redis(RedisRateLimiter, onFailure: StoreFailure, health: StoreHealthLog)
    }

    /// What a request gets while the Redis store cannot answer.
    enum StoreFailure: String, Sendable {
        /// Counted by this instance alone (each instance enforces the full limit).
        case local
        /// Let through uncounted.
        case allow
        /// Refused with 503.
        case deny
    }

    enum Key: Sendable {
        case user
        case ip
        case header(HTTPField.Name)
        /// A Lua export picks the key (and the tier or limit) per request.
        case function
    }

    /// Whether a Lua key function picks the tenant (`rateLimitBy: "function"`).
    public var usesKeyFunction: Bool {
        if case .function = by { return true }
        return false
    }

    /// The key function named by `options.identifier` (`{ "module": "$import(./plugins/x)",
    /// "export": "rateLimitKey" }`) when `rateLimitBy` is `function`.
    public static func keyFunction(_ options: JSONValue) -> (ModuleReference, String)? {
        guard options["rateLimitBy"]?.stringValue == "function", let text = options["identifier"]?["module"]?.stringValue,
              let module = ModuleReference.parse(text) else { return nil }
        return (module, options["identifier"]?["export"]?.stringValue ?? "default")
    }

    /// `redis` is the store of `mode: "redis"` (nil when gatehouse.json configures none).
    public init(
        name: String, options: JSONValue, store: RateLimitStore, redis: RedisRateLimiter? = nil, services: RuntimeServices? = nil,
        logger: Logger = Logger(label: "gatehouse"), location: ConfigError? = nil
    ) throws(ConfigError) {
        self.name = name
        self.store = store
        self.logger = logger
        func fail(_ message: String) -> ConfigError { optionError(location, policy: name, message) }
        try checkOptions(options, known: [
            "rateLimitBy", "headerName", "identifier", "trustedProxies", "tiers", "tierFrom", "defaultTier", "mode", "onStoreFailure", "headers",
        ], booleans: ["headers"], location: location, policy: name)
        switch options["rateLimitBy"]?.stringValue ?? "user" {
        case "user": by = .user
        case "ip": by = .ip
        case "header":
            guard let text = options["headerName"]?.stringValue, let header = HTTPField.Name(text) else {
                throw fail("rateLimitBy \"header\" needs options.headerName, a valid header name")
            }
            by = .header(header)
        case "function":
            guard Self.keyFunction(options) != nil else {
                throw fail("rateLimitBy \"function\" needs options.identifier: { \"module\": \"$import(./plugins/<name>)\", \"export\": \"<function>\" }")
            }
            by = .function
        case let other:
            throw fail("rateLimitBy is user, ip, header or function, not '\(other)'")
        }
        let failure: StoreFailure
        let failureText = options["onStoreFailure"]?.stringValue ?? "local"
        guard let parsed = StoreFailure(rawValue: failureText) else { throw fail("onStoreFailure is \"local\", \"allow\" or \"deny\", not '\(failureText)'") }
        failure = parsed
        switch options["mode"]?.stringValue ?? "local" {
        case "local":
            mode = .local
        case "redis":
            guard let redis else { throw fail("mode \"redis\" needs a Redis store: add \"redis\": { \"url\": \"redis://127.0.0.1:6379\" } to gatehouse.json") }
            mode = .redis(redis, onFailure: failure, health: services?.healthLog("rate-limit " + name) ?? StoreHealthLog())
        case let other: throw fail("mode is \"local\" or \"redis\", not '\(other)'")
        }
        guard case .object(let tierOptions)? = options["tiers"], !tierOptions.isEmpty else {
            throw fail("options.tiers is required: { \"<tier>\": { \"rpm\": n, \"burst\": n } }")
        }
        var tiers: [String: RateLimitStore.Limit] = [:]
        for (tier, value) in tierOptions {
            guard case .int(let rpm)? = value["rpm"], rpm > 0, rpm <= RateLimitStore.Limit.maxRequestsPerMinute else {
                throw fail("tiers.\(tier).rpm must be a whole number from 1 to \(RateLimitStore.Limit.maxRequestsPerMinute)")
            }
            let burst: Int64
            switch value["burst"] {
            case nil: burst = 1
            case .int(let b)? where b > 0 && b <= RateLimitStore.Limit.maxBurst: burst = b
            default: throw fail("tiers.\(tier).burst must be a whole number from 1 to \(RateLimitStore.Limit.maxBurst)")
            }
            tiers[tier] = RateLimitStore.Limit(requestsPerMinute: Int(rpm), burst: Int(burst))
        }
        self.tiers = tiers
        let defaultTier = options["defaultTier"]?.stringValue ?? (tiers.count == 1 ? tiers.keys.first! : "")
        guard tiers[defaultTier] != nil else { throw fail("options.defaultTier must name one of the tiers (\(tiers.keys.sorted().joined(separator: ", ")))") }
        self.defaultTier = defaultTier
        tierPath = options["tierFrom"]?.stringValue.map { $0.split(separator: ".").map(String.init) }
        headers = options["headers"]?.boolValue ?? true
        client = try ClientAddress(options: options, fail: fail)
    }

    /// Counts the request against its tenant's tier: nil to go on, or the 429 problem.
    public func authenticate(_ state: RequestState) async -> Problem? {
        let tier = tierName(for: state)
        return await count(tenant: key(for: state), limit: tiers[tier] ?? tiers[defaultTier]!, tier: tier, state: state)
    }

    /// Counts the request by what the key function returned (`selection`): nil (the function
    /// returned nil: not limited) or the problem, or a failure when it returned something else.
    public func authenticate(_ state: RequestState, selection: JSONValue) async -> Result<Problem?, PolicyFailure> {
        func wrong(_ message: String) -> Result<Problem?, PolicyFailure> {
            .failure(PolicyFailure(policy: name, message: "the key function of '\(name)' " + message))
        }
        if case .null = selection { return .success(nil) }
        guard case .object = selection else { return wrong("must return a table { key = ..., tier = ... } or nil") }
        guard let key = selection["key"]?.stringValue, !key.isEmpty else { return wrong("returned no key (a non-empty string)") }
        if let rpmValue = selection["requestsPerMinute"] {
            guard case .int(let rpm) = rpmValue, rpm > 0, rpm <= RateLimitStore.Limit.maxRequestsPerMinute else {
                return wrong("returned requestsPerMinute that is not a whole number from 1 to \(RateLimitStore.Limit.maxRequestsPerMinute)")
            }
            var burst: Int64 = 1
            if let burstValue = selection["burst"] {
                guard case .int(let b) = burstValue, b > 0, b <= RateLimitStore.Limit.maxBurst else {
                    return wrong("returned a burst that is not a whole number from 1 to \(RateLimitStore.Limit.maxBurst)")
                }
                burst = b
            }
            let limit = RateLimitStore.Limit(requestsPerMinute: Int(rpm), burst: Int(burst))
            return .success(await count(tenant: "fn:" + key, limit: limit, tier: nil, state: state))
        }
        var tier = tierName(for: state)
        if let named = selection["tier"] {
            guard let text = named.stringValue, tiers[text] != nil else {
                return wrong("returned tier \(named), which is not one of \(tiers.keys.sorted().joined(separator: ", "))")
            }
            tier = text
        }
        return .success(await count(tenant: "fn:" + key, limit: tiers[tier]!, tier: tier, state: state))
    }

    /// Counts one request of `tenant` against `limit` (named `tier`, nil for a limit a key
    /// function chose): nil to go on, or the 429 (or, with `onStoreFailure: "deny"`, 503).
    func count(tenant: String, limit: RateLimitStore.Limit, tier: String?, state: RequestState) async -> Problem? {
        let decision: RateLimitStore.Decision
        switch mode {
        case .local:
            decision = store.check("p\u{0}" + name + "\u{0}" + tenant, limit)
        case .redis(let redis, let onFailure, let health):
            switch await redis.check(tenant: tenant, scope: "p:" + name, limit) {
            case .success(let counted):
                health.succeeded(what: "rate-limit policy '\(name)'", logger: logger)
                decision = counted
            case .failure(let error):
                health.failed(error, what: "rate-limit policy '\(name)'", fallback: onFailure.consequence, logger: logger)
                switch onFailure {
                case .local: decision = store.check("p\u{0}" + name + "\u{0}" + tenant, limit)
                case .allow: return nil
                case .deny:
                    var fields = HTTPFields()
                    fields[.retryAfter] = "1"
                    return Problem(
                        status: .serviceUnavailable, type: Problem.Kind.rateLimitStoreUnavailable,
                        detail: "The rate limit could not be checked; try again shortly.", headers: fields)
                }
            }
        }
        var fields = HTTPFields()
        if headers {
            fields[.rateLimitLimit] = String(limit.burst)
            fields[.rateLimitRemaining] = String(decision.remaining)
            fields[.rateLimitReset] = String(Self.seconds(decision.reset))
            fields[.rateLimitPolicy] = "\(limit.requestsPerMinute);w=60;burst=\(limit.burst)"
        }
        guard !decision.allowed else {
            // On whatever answers the request (upstream, policy or problem); with several
            // limits, the tightest one's.
            let earlier = state.responseHeaders[.rateLimitRemaining].flatMap { Int($0) }
            if headers, earlier == nil || decision.remaining < earlier! {
                for name in HTTPField.Name.rateLimitFields { state.responseHeaders[name] = nil }
                state.responseHeaders.append(contentsOf: fields)
            }
            return nil
        }
        fields[.retryAfter] = String(Self.seconds(decision.retryAfter ?? .seconds(1)))
        return Problem(
            status: .tooManyRequests, type: Problem.Kind.rateLimited,
            detail: tier.map { "The rate limit of the '\($0)' tier (\(limit.requestsPerMinute) requests per minute, bursts of \(limit.burst)) was exceeded." }
                ?? "The rate limit (\(limit.requestsPerMinute) requests per minute, bursts of \(limit.burst)) was exceeded.",
            headers: fields)
    }

    /// Whole seconds, rounded up (a client that waits that long is let through).
    static func seconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return max(0, s + (atto > 0 ? 1 : 0))
    }

    func tierName(for state: RequestState) -> String {
        guard let tierPath, var value = state.user else { return defaultTier }
        for field in tierPath {
            guard let next = value[field] else { return defaultTier }
            value = next
        }
        guard let tier = value.stringValue, tiers[tier] != nil else { return defaultTier }
        return tier
    }

    /// The tenant: the consumer's `sub`, the client address, or a header (the address when the
    /// request has no consumer or no such header).
    func key(for state: RequestState) -> String {
        switch by {
        case .user:
            if let sub = state.user?["sub"]?.stringValue { return "user:" + sub }
        case .header(let name):
            if let value = state.headers[name] { return "header:" + value }
        case .ip, .function:
            break
        }
        return "ip:" + client.resolve(state)
    }
}

extension RateLimitInbound: BuiltInInboundPolicy {}

extension RateLimitInbound.StoreFailure {
    /// For the log line of a transition.
    var consequence: String {
        switch self {
        case .local: "counting per instance (onStoreFailure local)"
        case .allow: "letting requests through uncounted (onStoreFailure allow)"
        case .deny: "refusing requests with 503 (onStoreFailure deny)"
        }
    }
}

extension HTTPField.Name {
    public static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    public static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    public static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!
    public static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    static let xForwardedForName = HTTPField.Name("X-Forwarded-For")!
    /// The fields of one limit, always set and replaced together.
    public static let rateLimitFields: [HTTPField.Name] = [.rateLimitLimit, .rateLimitRemaining, .rateLimitReset, .rateLimitPolicy]
}
