public import GatehouseCore
public import HTTPTypes

/// What a `rewritePattern` may refer to, gathered for one request.
public struct RewriteInputs: Sendable {
    public var custom: [String: String]
    public var params: [(name: String, value: String)]
    public var query: String?
    public var headers: HTTPFields
    public var environment: ConfigEnvironment
    public var method: HTTPRequest.Method
    public var path: String
    /// The route's greedy parameter (`{+path}`), whose `/` stay path separators.
    public var greedyParameter: String?
    /// The segments the greedy parameter matched, each encoded on its own when rendered.
    public var greedySegments: [String]?

    public init(custom: [String: String], params: [(name: String, value: String)], query: String?, headers: HTTPFields,
                environment: ConfigEnvironment, method: HTTPRequest.Method, path: String, greedyParameter: String?,
                greedySegments: [String]? = nil) {
        self.greedyParameter = greedyParameter
        self.greedySegments = greedySegments
        self.custom = custom
        self.params = params
        self.query = query
        self.headers = headers
        self.environment = environment
        self.method = method
        self.path = path
    }
}

extension RewritePattern {
    /// The `context.custom` names the pattern reads (fetched from Lua before rendering).
    public var customNames: [String] {
        parts.compactMap { if case .contextCustom(let n) = $0 { n } else { nil } }
    }

    /// Builds the upstream URL. Values from the operator (`context.custom`, `env`) are inserted
    /// as they are, since they usually hold base URLs; values from the client (`params`, `query`,
    /// `headers`) are percent-encoded so they cannot add path segments or query parameters.
    public func render(_ inputs: RewriteInputs) throws(Problem) -> String {
        var out = ""
        var inQuery = false
        func client(_ value: String) -> String {
            inQuery ? PathCoding.encodeQueryComponent(value) : PathCoding.encodePathSegment(value)
        }
        for part in parts {
            switch part {
            case .literal(let text):
                out += text
            case .contextCustom(let name):
                guard let value = inputs.custom[name] else {
                    throw Self.misconfigured("The rewritePattern needs context.custom.\(name), which no policy set for this request.")
                }
                out += value
            case .env(let name):
                guard let value = inputs.environment.values[name] else {
                    throw Self.misconfigured("The rewritePattern needs the environment variable \(name), which is not set.")
                }
                out += value
            case .param(let name):
                let value = inputs.params.first(where: { $0.name == name })?.value ?? ""
                if inQuery {
                    out += PathCoding.encodeQueryComponent(value)
                } else if name == inputs.greedyParameter {
                    // Segment by segment: an (allowed) encoded `/` inside one stays `%2F`.
                    let segments = inputs.greedySegments ?? value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                    out += segments.map(PathCoding.encodePathSegment).joined(separator: "/")
                } else {
                    out += PathCoding.encodePathSegment(value)
                }
            case .query(let name):
                let value = PathCoding.queryItems((inputs.query ?? "")[...]).first(where: { $0.name == name })?.value ?? ""
                out += client(value)
            case .header(let name):
                out += client(HTTPField.Name(name).flatMap { inputs.headers[$0] } ?? "")
            case .method:
                out += inputs.method.rawValue
            case .path:
                out += inputs.path
            }
            // A byte scan: String.contains(String) goes through Foundation (measured in bench/).
            if !inQuery, out.utf8.contains(UInt8(ascii: "?")) { inQuery = true }
        }
        guard out.hasPrefix("http://") || out.hasPrefix("https://") else {
            throw Self.misconfigured("The rewritten upstream URL is not an absolute http(s) URL.")
        }
        // A client value in the path (a query or header value is `.` or `..`) would climb out of
        // the prefix the pattern puts it under: never sent.
        if PathCoding.hasDotSegment(inURL: out) { throw Self.dotSegment }
        return out
    }

    /// The rendered upstream path would contain a `.` or `..` segment.
    public static let dotSegment = Problem(
        status: .badRequest, type: Problem.Kind.badRequest,
        detail: "The request would reach the upstream with a '.' or '..' path segment.")

    private static func misconfigured(_ detail: String) -> Problem {
        Problem(status: .internalServerError, type: Problem.Kind.configuration, detail: detail)
    }
}

/// Appends the client's query string to an upstream URL.
public func appendingQuery(_ url: String, _ query: String?) -> String {
    guard let query, !query.isEmpty else { return url }
    return url + (url.utf8.contains(UInt8(ascii: "?")) ? "&" : "?") + query
}
