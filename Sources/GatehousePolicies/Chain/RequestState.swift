public import GatehouseCore
public import HTTPTypes

/// Everything the gateway and its policies know about one request while it is handled.
///
/// Used by one party at a time: the request's task, or the VM's event loop while that task
/// awaits a Lua invocation. Hence `@unchecked Sendable`, not a lock.
public final class RequestState: @unchecked Sendable {
    public let requestId: String
    public var method: HTTPRequest.Method
    /// The normalised path (decoded once, empty segments collapsed, encoded again; without the
    /// query): what was routed and what is forwarded.
    public var path: String
    /// The query string without `?`, or nil when there was none.
    public var query: String?
    public var headers: HTTPFields
    public var body: MessageBody
    /// `http` or `https`, and the `Host` the client used: for `request.url` and X-Forwarded-*.
    public let scheme: String
    public let authority: String?
    public let clientAddress: String?
    /// Path parameters of the matched route, decoded.
    public var params: [(name: String, value: String)]
    public let route: RouteConfig

    /// Set by an authentication policy: `request.user = {sub, data}`.
    public private(set) var user: JSONValue?
    /// Bumped on every change of `user`, so Lua's cached copy can tell it is stale.
    public private(set) var userVersion: Int64 = 0

    /// Responses created while handling this request (`response.new`, problems, the upstream
    /// response); Lua refers to them by index + 1.
    public var responses: [ResponseState] = []
    /// The decoded segments the route matched (the greedy parameter's come from here when the
    /// upstream URL is rendered).
    public var pathSegments: [String] = []
    /// Headers the gateway adds to the final answer, whoever gives it (e.g. `RateLimit-*`).
    public var responseHeaders = HTTPFields()
    /// A problem the gateway must answer with whatever the policy returns (e.g. 413 after a
    /// body read hit the limit).
    public var forcedProblem: Problem?

    /// The Lua handle of this request on its VM, 0 until a Lua policy first sees it.
    var rid: Int64 = 0
    /// The policy currently running, for logs.
    var currentPolicy: String?
    /// What a yielded host function is waiting for.
    var pending: PendingOperation?

    public init(
        requestId: String, method: HTTPRequest.Method, path: String, query: String?, headers: HTTPFields,
        body: MessageBody, scheme: String, authority: String?, clientAddress: String?,
        params: [(name: String, value: String)], route: RouteConfig
    ) {
        self.requestId = requestId
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.scheme = scheme
        self.authority = authority
        self.clientAddress = clientAddress
        self.params = params
        self.route = route
    }

    public func setUser(_ user: JSONValue?) {
        self.user = user
        userVersion &+= 1
    }

    /// `scheme://host/path?query` with the normalised path.
    public var url: String {
        var out = scheme + "://" + (authority ?? "localhost") + path
        if let query { out += "?" + query }
        return out
    }

    /// Adds a response and returns its Lua index.
    func addResponse(_ response: ResponseState) -> Int {
        responses.append(response)
        return responses.count
    }
}

/// A response being built: by a policy, by the gateway, or received from an upstream.
public final class ResponseState: @unchecked Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: MessageBody

    public init(status: HTTPResponse.Status, headers: HTTPFields = [:], body: MessageBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Asynchronous work a host function asked for before yielding.
enum PendingOperation {
    /// Read a request (index 0) or response (index k) body into memory.
    case readBody(index: Int)
    case fetch(FetchRequest)
    case fetchAll([FetchRequest])
    /// Wait for a loader's in-flight load.
    case awaitLoad(LoaderRegistry.Load)
    /// A Redis zone's get, put or delete (`cache.zone(name, { store = "redis" })`).
    case redisZone(RedisZoneOperation)
    /// `ratelimit.check(key, { rpm, burst, store = "redis" })`.
    case redisRateLimit(key: String, limit: RateLimitStore.Limit)
}

enum RedisZoneOperation {
    case get(zone: String, key: String)
    case put(zone: String, key: String, value: JSONValue, ttl: Duration)
    case delete(zone: String, key: String)
}

extension RequestState {
    /// A request-less state for work a policy starts outside any client request (a background
    /// load): it gives `http.fetch` and responses somewhere to live.
    static func background(label: String) -> RequestState {
        RequestState(
            requestId: RequestID.next(), method: .get, path: "/", query: nil, headers: [:], body: .empty,
            scheme: "http", authority: nil, clientAddress: nil, params: [], route: .synthetic(source: label))
    }
}

extension ResponseState {
    /// A problem+json response for a request.
    public static func problem(_ problem: Problem, path: String, requestId: String) -> ResponseState {
        var headers = problem.headers
        headers[.contentType] = Problem.contentType
        return ResponseState(status: problem.status, headers: headers, body: .text(problem.body(instance: path, requestId: requestId)))
    }
}
