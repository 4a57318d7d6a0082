public import Foundation
public import HTTPTypes
/// A named policy instance from `policies.json`.
public struct PolicyConfig: Sendable {
    public var name: String
    /// `custom-code-inbound`, `custom-code-outbound`, or a built-in such as `api-key-inbound`.
    public var policyType: String
    /// For Lua policies: the module and the export to call.
    public var module: ModuleReference?
    public var export: String?
    public var options: JSONValue
    /// `closed` (default): an error in the policy answers 500. `open`: the error is logged and
    /// the chain goes on. Authentication policies are always closed.
    public var failOpen: Bool
    /// Per-policy overrides of the Lua budgets (nil: the defaults from gatehouse.json).
    public var instructionBudget: UInt64?
    public var timeBudgetMilliseconds: Int?
    public var wallClockBudgetMilliseconds: Int?
    public var location: ConfigError

    public var isLua: Bool { policyType == "custom-code-inbound" || policyType == "custom-code-outbound" }
}

/// A consumer of the API and the hashes of its keys, from `consumers.json`.
public struct ConsumerConfig: Sendable {
    public var sub: String
    /// The consumer's keys: SHA-256 digests only (the keys themselves are never stored).
    public var keys: [ConsumerKey]
    public var metadata: JSONValue

    /// Largest serialized `metadata` per consumer: it is copied into every request's `request.user`.
    public static let maxMetadataBytes = 4096
}

/// One API key of a consumer.
public struct ConsumerKey: Sendable {
    public var sha256: [UInt8]
    /// A short public id (`gatehouse keys list`, `keys revoke`), when the key has one.
    public var id: String?
    /// After this instant the key is refused (401).
    public var expiresAt: Date?
}

/// Server and runtime settings from `gatehouse.json` (every field optional).
public struct GatewaySettings: Sendable {
    /// Upstream connect timeout.
    public var connectTimeoutMilliseconds: Int = 5_000
    /// Upstream response timeout: from sending the request until the response head arrives;
    /// while a response body streams, the longest silence between two reads.
    public var upstreamTimeoutMilliseconds: Int = 30_000
    /// A pooled upstream connection unused this long is closed.
    public var upstreamIdleTimeoutSeconds: Int = 60
    /// Upstream connections per origin on each event loop; more requests wait for one.
    public var upstreamConnectionsPerLoop: Int = 256
    /// PEM file of CA certificates trusted for `https` upstreams instead of the system's
    /// (resolved against the config directory when relative).
    public var upstreamCaFile: String?
    /// Verify `https` upstreams' certificates (chain and name). Off only for development.
    public var upstreamTlsVerify = true
    /// Largest request body a policy may read into memory (`request:text()`); larger → 413.
    public var maxBufferedBodyBytes: Int = 1 << 20
    /// Largest request body accepted at all, counted while it streams; larger → 413.
    public var maxRequestBodyBytes: Int = 10 << 20
    /// Per-invocation Lua budgets, each for the whole invocation (all its resumes): VM
    /// instructions, time spent running Lua code, and time from start to end with waits for
    /// I/O included.
    public var luaInstructionBudget: UInt64 = 10_000_000
    public var luaTimeBudgetMilliseconds: Int = 1_000
    public var luaWallClockBudgetMilliseconds: Int = 30_000
    /// Per-VM Lua memory cap.
    public var luaMemoryLimitBytes: Int = 64 << 20
    /// The request id header (validated once at load, used on every request).
    public var requestIdHeader: HTTPField.Name = HTTPField.Name("x-request-id")!
    /// Close a client connection after this long without a byte (keep-alive idle time included).
    public var idleTimeoutSeconds: Int = 75
    /// A whole request (head and body) must arrive within this long after the connection opened
    /// or the previous response ended; otherwise 408 and close (slow-drip clients).
    public var requestTimeoutSeconds: Int = 60
    /// Largest size of the request's header section; larger → 431.
    public var maxHeaderBytes: Int = 32 * 1024
    /// Longest request line (method, target, version); longer → 414.
    public var maxRequestLineBytes: Int = 8 * 1024
    /// Accept `%2F`, `%5C` and `\` in request paths (kept encoded end to end: routed as part of
    /// one segment and forwarded as `%2F`). Off: such paths are refused with 400, so an
    /// upstream that decodes them can never see a path the gateway did not route.
    public var allowEncodedSlashes = false
    /// Client connections served at once; more are answered 503 and closed.
    public var maxConnections: Int = 10_000
    /// After SIGTERM/SIGINT, how long in-flight requests may take before they are cut (and logged).
    public var shutdownGraceSeconds: Int = 30
    /// The Redis store, when configured (`redis` in gatehouse.json).
    public var redis: RedisSettings?

    public init() {}
}
