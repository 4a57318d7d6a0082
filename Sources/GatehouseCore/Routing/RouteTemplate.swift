/// A route path such as `/v1/customers/{id}` or `/v1/{+path}`.
///
/// Parameters are whole segments; `{+name}` is greedy, matches the rest of the path (zero or
/// more segments) and must be last.
public struct RouteTemplate: Sendable, Equatable, CustomStringConvertible {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        case greedy(String)

        /// Precedence rank: literal before parameter before greedy.
        var rank: Int {
            switch self {
            case .literal: 0
            case .parameter: 1
            case .greedy: 2
            }
        }
    }

    public let text: String
    public let segments: [Segment]

    public var description: String { text }

    /// Parses a template; the error says what is wrong with it.
    public init(_ text: String) throws(TemplateError) {
        guard text.hasPrefix("/") else { throw TemplateError("a route path must start with '/'") }
        var segments: [Segment] = []
        var names: Set<String> = []
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        for (i, part) in parts.enumerated() {
            if part.hasPrefix("{") {
                guard part.hasSuffix("}"), part.count > 2 else {
                    throw TemplateError("a parameter must be a whole segment like {id} or {+path}, not '\(part)'")
                }
                var name = part.dropFirst().dropLast()
                let greedy = name.hasPrefix("+")
                if greedy { name = name.dropFirst() }
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw TemplateError("invalid parameter name in '\(part)'")
                }
                guard names.insert(String(name)).inserted else { throw TemplateError("parameter '\(name)' appears twice") }
                if greedy {
                    guard i == parts.count - 1 else { throw TemplateError("the greedy parameter {+\(name)} must be the last segment") }
                    segments.append(.greedy(String(name)))
                } else {
                    segments.append(.parameter(String(name)))
                }
            } else {
                guard !part.contains("{"), !part.contains("}") else {
                    throw TemplateError("a parameter must be a whole segment like {id}, not '\(part)'")
                }
                guard part != ".", part != ".." else { throw TemplateError("dot segments are not allowed in route paths") }
                segments.append(.literal(String(part)))
            }
        }
        self.text = text
        self.segments = segments
    }

    /// The name of the trailing `{+name}` parameter, if any.
    public var greedyParameter: String? {
        if case .greedy(let name) = segments.last { return name }
        return nil
    }

    /// The shape of the template with parameter names erased: two templates with the same shape
    /// match exactly the same paths.
    public var shape: String {
        "/" + segments.map { s in
            switch s {
            case .literal(let l): l
            case .parameter: "{}"
            case .greedy: "{+}"
            }
        }.joined(separator: "/")
    }

    /// Orders templates by precedence: segment by segment, literal before parameter before
    /// greedy; a longer run of fixed segments before a shorter one.
    public static func precedes(_ a: RouteTemplate, _ b: RouteTemplate) -> Bool {
        for (x, y) in zip(a.segments, b.segments) where x.rank != y.rank {
            return x.rank < y.rank
        }
        if a.segments.count != b.segments.count {
            // `/a/b/{+p}` is more specific than `/a/{+p}`; a shorter fixed path is more
            // specific than a longer one that ends greedy.
            let aGreedy = a.segments.last?.rank == 2, bGreedy = b.segments.last?.rank == 2
            if aGreedy != bGreedy { return !aGreedy }
            return a.segments.count > b.segments.count
        }
        return false
    }

    /// The segments of `path` that the greedy parameter matched, if the template ends with one
    /// (kept apart so that a `/` inside a segment, when allowed, is never taken for a separator).
    public func greedySegments(of path: [String]) -> [String]? {
        guard case .greedy = segments.last, path.count >= segments.count - 1 else { return nil }
        return Array(path[(segments.count - 1)...])
    }

    /// Matches decoded path segments; returns parameters in template order.
    public func match(_ path: [String]) -> [(name: String, value: String)]? {
        var params: [(name: String, value: String)] = []
        for (i, segment) in segments.enumerated() {
            switch segment {
            case .literal(let l):
                guard i < path.count, path[i] == l else { return nil }
            case .parameter(let name):
                guard i < path.count else { return nil }
                params.append((name, path[i]))
            case .greedy(let name):
                params.append((name, path[i...].joined(separator: "/")))
                return params
            }
        }
        return path.count == segments.count ? params : nil
    }
}

/// Why a route template is invalid.
public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
