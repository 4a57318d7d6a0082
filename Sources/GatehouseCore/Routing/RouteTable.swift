public import HTTPTypes

/// Finds the route for a method and path. Built once per configuration generation.
///
/// Precedence is deterministic: literal segments before parameters before greedy parameters,
/// then document order (see ``RouteTemplate/precedes(_:_:)``).
public struct RouteTable: Sendable {
    /// Routes in precedence order, with their index in the config.
    public let ordered: [(index: Int, route: RouteConfig)]

    public init(_ routes: [RouteConfig]) {
        let indexed = routes.enumerated().map { (index: $0.offset, route: $0.element) }
        ordered = indexed.sorted { a, b in
            if RouteTemplate.precedes(a.route.template, b.route.template) { return true }
            if RouteTemplate.precedes(b.route.template, a.route.template) { return false }
            return a.index < b.index
        }
    }

    public enum Match: Sendable {
        case found(index: Int, route: RouteConfig, params: [(name: String, value: String)])
        /// The path exists for other methods: answer 405 with `Allow`.
        case methodNotAllowed(allowed: [HTTPRequest.Method])
        case notFound
    }

    public func match(method: HTTPRequest.Method, segments: [String]) -> Match {
        var allowed: [HTTPRequest.Method] = []
        for (index, route) in ordered {
            guard let params = route.template.match(segments) else { continue }
            if route.method == method { return .found(index: index, route: route, params: params) }
            // HEAD is served by GET routes.
            if method == .head && route.method == .get { return .found(index: index, route: route, params: params) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// Explains which route wins for a path and why, for `gatehouse routes`.
    public func explain(method: HTTPRequest.Method, segments: [String]) -> [String] {
        var lines: [String] = []
        var winner = false
        for (index, route) in ordered {
            guard route.template.match(segments) != nil else { continue }
            let methodOK = route.method == method || (method == .head && route.method == .get)
            if methodOK && !winner {
                lines.append("→ \(route.label) (route #\(index + 1)) wins")
                winner = true
            } else {
                lines.append("  \(route.label) (route #\(index + 1)) also matches the path but \(methodOK ? "has lower precedence" : "not the method")")
            }
        }
        if lines.isEmpty { lines.append("no route matches") }
        return lines
    }
}
