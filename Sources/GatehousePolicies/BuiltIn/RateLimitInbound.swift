import Foundation
public import GatehouseCore
public import HTTPTypes

/// `rate-limit-inbound`: per-tenant limits with tiers (seed 003), exact by GCRA in a
/// process-wide store (``RateLimitStore``) whose counters are keyed by policy name and tenant,
/// so a reload never resets them.
///
/// Options: `rateLimitBy` (`user`, `ip`, `header`), `headerName` (for `header`),
/// `trustedProxies` (CIDRs whose `X-Forwarded-For` is believed, for `ip`), `tiers`
/// (`name → { rpm, burst }`), `tierFrom` (a dotted path into `request.user`, e.g. `data.tier`),
/// `defaultTier`, `mode` (`local`), `headers` (the `RateLimit-*` headers on every answer,
/// default true). A refused request is a 429 problem naming the limit (never the key) with
/// `Retry-After`.
public struct RateLimitInbound: Sendable {
    public let name: String
    let by: Key
    let tiers: [String: RateLimitStore.Limit]
    let tierPath: [String]?
    let defaultTier: String
    let headers: Bool
    let trusted: [CIDR]
    let store: RateLimitStore

    enum Key: Sendable {
        case user
        case ip
        case header(HTTPField.Name)
    }

    public init(name: String, options: JSONValue, store: RateLimitStore) throws(ConfigError) {
        self.name = name
        self.store = store
        func fail(_ message: String) -> ConfigError {
            ConfigError(file: GatewayConfig.policiesFile, message: "policy '\(name)': \(message)")
        }
        switch options["rateLimitBy"]?.stringValue ?? "user" {
        case "user": by = .user
        case "ip": by = .ip
        case "header":
            guard let text = options["headerName"]?.stringValue, let header = HTTPField.Name(text) else {
                throw fail("rateLimitBy \"header\" needs options.headerName, a valid header name")
            }
            by = .header(header)
        case "function":
            throw fail("rateLimitBy \"function\" is not available yet; use user, ip or header (with tierFrom for the tier)")
        case let other:
            throw fail("rateLimitBy is user, ip or header, not '\(other)'")
        }
        switch options["mode"]?.stringValue ?? "local" {
        case "local": break
        case "redis": throw fail("mode \"redis\" needs the Redis store, which this build does not have yet; use \"local\"")
        case let other: throw fail("mode is \"local\", not '\(other)'")
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
        var trusted: [CIDR] = []
        if case .array(let list)? = options["trustedProxies"] {
            for item in list {
                guard let text = item.stringValue, let cidr = CIDR(text) else { throw fail("trustedProxies holds CIDRs such as 10.0.0.0/8 or ::1/128") }
                trusted.append(cidr)
            }
        }
        self.trusted = trusted
    }

    /// Counts the request against its tenant's tier: nil to go on, or the 429 problem.
    public func authenticate(_ state: RequestState) -> Problem? {
        let tier = tierName(for: state)
        let limit = tiers[tier] ?? tiers[defaultTier]!
        let decision = store.check("p\u{0}" + name + "\u{0}" + key(for: state), limit)
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
            detail: "The rate limit of the '\(tier)' tier (\(limit.requestsPerMinute) requests per minute, bursts of \(limit.burst)) was exceeded.",
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
        case .ip:
            break
        }
        return "ip:" + clientAddress(state)
    }

    /// The client's address; behind a trusted proxy, the rightmost `X-Forwarded-For` entry that
    /// is not itself a trusted proxy.
    func clientAddress(_ state: RequestState) -> String {
        let peer = state.clientAddress.flatMap(CIDR.canonical) ?? state.clientAddress ?? "unknown"
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        // Entries as proxies write them (`1.2.3.4:5678`, `[::1]`), canonical; walking from the
        // nearest hop, the first that is not a trusted proxy is the client. An entry that is no
        // address stops the walk: the last trusted hop is then the key.
        let chain = state.headers[values: .xForwardedForName].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var last = peer
        for entry in chain.reversed() {
            guard let address = CIDR.canonical(entry) else { return last }
            if !trusted.contains(where: { $0.contains(address) }) { return address }
            last = address
        }
        return last
    }
}

extension RateLimitInbound: BuiltInInboundPolicy {}

extension HTTPField.Name {
    public static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    public static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    public static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!
    public static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    static let xForwardedForName = HTTPField.Name("X-Forwarded-For")!
    /// The fields of one limit, always set and replaced together.
    public static let rateLimitFields: [HTTPField.Name] = [.rateLimitLimit, .rateLimitRemaining, .rateLimitReset, .rateLimitPolicy]
}
