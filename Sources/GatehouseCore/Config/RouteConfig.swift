public import HTTPTypes

/// One operation of `routes.oas.json`: a method on a path template with its handler and policies.
public struct RouteConfig: Sendable {
    public var template: RouteTemplate
    public var method: HTTPRequest.Method
    public var operationId: String?
    public var handler: HandlerConfig
    public var inbound: [String]
    public var outbound: [String]
    /// Where the route is declared, for messages.
    public var location: ConfigError
    /// The route's CORS policy (`x-gatehouse-route.corsPolicy`), if any.
    public var cors: CORSPolicyConfig?

    public init(template: RouteTemplate, method: HTTPRequest.Method, operationId: String?, handler: HandlerConfig,
                inbound: [String], outbound: [String], location: ConfigError) {
        self.template = template
        self.method = method
        self.operationId = operationId
        self.handler = handler
        self.inbound = inbound
        self.outbound = outbound
        self.location = location
    }

    /// A route for work that matched no configured route (a background load, a policy test):
    /// `source` says where it came from in messages.
    public static func synthetic(method: HTTPRequest.Method = .get, source: String) -> RouteConfig {
        RouteConfig(
            template: try! RouteTemplate("/"), method: method, operationId: nil,
            handler: .staticResponse(status: 200, headers: [], body: ""), inbound: [], outbound: [],
            location: ConfigError(file: source, message: ""))
    }

    /// `GET /v1/{+path}`
    public var label: String { "\(method.rawValue) \(template.text)" }
}

/// What answers a route once its inbound policies let the request through.
public enum HandlerConfig: Sendable {
    /// Forwards to a URL built from `pattern` (see docs/config.md for the `${...}` variables).
    case urlRewrite(pattern: RewritePattern, forwardSearch: Bool, preserveHost: Bool)
    /// Forwards to `baseUrl` + the incoming path and query.
    case urlForward(baseUrl: String, forwardSearch: Bool, preserveHost: Bool)
    /// Forwards to a target of an upstream group: `group`'s, with the request path as
    /// `url-forward` does; or, without one, the group and path the path-routing table of
    /// `upstreams.json` gives (a policy may name the group in `context.custom.upstream`).
    case upstreamGroup(group: String?, forwardSearch: Bool, preserveHost: Bool)
    /// Several calls to upstream groups in parallel, merged into one JSON answer.
    case aggregate(AggregateConfig)
    /// A fixed response, for mocks and health checks.
    case staticResponse(status: Int, headers: [(String, String)], body: String)
    /// A Lua module function that returns the response.
    case lua(module: ModuleReference, export: String, options: JSONValue)
}

/// `$import(./plugins/name)` in config: a Lua module under a plugin directory.
public struct ModuleReference: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The module name relative to a plugin directory, e.g. `environment-routing` or `lib/x`.
    public let name: String

    public init(name: String) { self.name = name }

    public var description: String { "$import(./plugins/\(name))" }

    /// Accepts `$import(./plugins/x)`, `$import(plugins/x)` and `$import(x)`.
    public static func parse(_ text: String) -> ModuleReference? {
        guard text.hasPrefix("$import("), text.hasSuffix(")") else { return nil }
        var inner = text.dropFirst("$import(".count).dropLast()
        if inner.hasPrefix("./") { inner = inner.dropFirst(2) }
        if inner.hasPrefix("plugins/") { inner = inner.dropFirst("plugins/".count) }
        if inner.hasSuffix(".lua") { inner = inner.dropLast(4) }
        let name = String(inner)
        let valid = !name.isEmpty && !name.hasPrefix("/") && !name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
            && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "/" || $0 == "." }
        return valid ? ModuleReference(name: name) : nil
    }
}

/// A parsed `rewritePattern`: literal text and `${...}` references.
public struct RewritePattern: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case contextCustom(String)
        case param(String)
        case query(String)
        case header(String)
        case env(String)
        case method
        case path
    }

    public let text: String
    public let parts: [Part]

    /// Parses the pattern; the error names the reference it does not understand.
    public init(_ text: String) throws(TemplateError) {
        var parts: [Part] = []
        for piece in try TemplateText.pieces(text, in: "rewritePattern") {
            switch piece {
            case .literal(let s): parts.append(.literal(s))
            case .reference(let r): parts.append(try Self.part(for: r))
            }
        }
        self.text = text
        self.parts = parts
    }

    private static func part(for reference: String) throws(TemplateError) -> Part {
        guard let part = requestPart(reference) else {
            throw TemplateError("unknown reference ${\(reference)} in rewritePattern (use context.custom.*, params.*, query.*, headers.*, env.*, request.method or request.path)")
        }
        return part
    }

    /// The request references every `${…}` template of the config shares (nil: not one).
    static func requestPart(_ reference: String) -> Part? {
        func suffix(_ prefix: String) -> String? {
            guard reference.hasPrefix(prefix) else { return nil }
            let name = String(reference.dropFirst(prefix.count))
            return name.isEmpty ? nil : name
        }
        if reference == "request.method" { return .method }
        if reference == "request.path" { return .path }
        if let n = suffix("context.custom.") { return .contextCustom(n) }
        if let n = suffix("params.") { return .param(n) }
        if let n = suffix("query.") { return .query(n) }
        if let n = suffix("headers.") { return .header(n) }
        if let n = suffix("env.") { return .env(n) }
        return nil
    }
}
