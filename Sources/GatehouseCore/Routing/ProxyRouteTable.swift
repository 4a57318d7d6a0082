import Foundation

/// The path-routing table of `upstreams.json` (`coreGroups` routes and legacy `cores`): which
/// group a request path goes to, and the path the upstream receives.
///
/// - A `coreGroups` route is chosen by the request's first path segment (its `name`); the name
///   is removed and the route's `pathPrefix` put in its place.
/// - A route with `routeByPath` matches the rest of the path against its keys, most specific
///   first (more segments, then longer), `""` last as the catch-all. The matched key is dropped
///   unless `preserveMatchedPath`; `transformPath` rewrites the rest instead.
/// - A legacy `cores` entry is chosen by its `pathPrefix` (whole segments, longest first), and
///   the rest of the path is appended to its `url`.
///
/// Every join puts exactly one `/` between its parts (``PathJoin``); a trailing `/` of the
/// request is kept.
public struct ProxyRouteTable: Sendable {
    public struct Route: Sendable, Equatable {
        /// The first path segment that selects this route.
        public var name: String
        public var group: String
        /// Replaces the name (nil: nothing replaces it).
        public var pathPrefix: String?
        /// Ordered most specific first.
        public var byPath: [PathRule]

        public init(name: String, group: String, pathPrefix: String?, byPath: [PathRule]) {
            self.name = name
            self.group = group
            self.pathPrefix = pathPrefix
            self.byPath = ProxyRouteTable.ordered(byPath)
        }
    }

    /// One `routeByPath` entry.
    public struct PathRule: Sendable, Equatable {
        /// Segments of the key without outer slashes; `""` is the catch-all.
        public var key: String
        public var pathPrefix: String
        public var preserveMatchedPath: Bool
        public var transform: PathTransform?

        public init(key: String, pathPrefix: String, preserveMatchedPath: Bool = false, transform: PathTransform? = nil) {
            self.key = PathJoin.trimSlashes(key)
            self.pathPrefix = pathPrefix
            self.preserveMatchedPath = preserveMatchedPath
            self.transform = transform
        }

        var segmentCount: Int { key.isEmpty ? 0 : key.split(separator: "/").count }
    }

    /// A legacy `cores` entry: its `url`'s origin is the group's target, its path is put in
    /// place of the matched `pathPrefix`.
    public struct LegacyCore: Sendable, Equatable {
        public var group: String
        /// Whole segments without outer slashes, e.g. `users`.
        public var pathPrefix: String
        /// The path of the core's `url` (`/api/http/user/`).
        public var upstreamPath: String

        public init(group: String, pathPrefix: String, upstreamPath: String) {
            self.group = group
            self.pathPrefix = PathJoin.trimSlashes(pathPrefix)
            self.upstreamPath = upstreamPath
        }
    }

    public private(set) var routes: [String: Route] = [:]
    /// Longest prefix first.
    public private(set) var legacy: [LegacyCore] = []

    public init(routes: [Route] = [], legacy: [LegacyCore] = []) {
        for route in routes { self.routes[route.name] = route }
        self.legacy = legacy.sorted { $0.pathPrefix.split(separator: "/").count > $1.pathPrefix.split(separator: "/").count }
    }

    public var isEmpty: Bool { routes.isEmpty && legacy.isEmpty }

    /// The Lua functions `transformPath` names (each VM loads them).
    public var luaTransforms: [(module: ModuleReference, export: String)] {
        var seen: Set<String> = []
        var out: [(module: ModuleReference, export: String)] = []
        for route in routes.values.sorted(by: { $0.name < $1.name }) {
            for rule in route.byPath {
                if case .lua(let module, let export) = rule.transform, seen.insert(module.name + "#" + export).inserted { out.append((module, export)) }
            }
        }
        return out
    }

    /// Where a request goes.
    public struct Resolution: Sendable {
        public var group: String
        /// To be joined onto the target's URL (``PathJoin/join(_:_:)``); may be empty. With a
        /// pending Lua transform: the transform's input.
        public var path: String
        /// A Lua `transformPath` still to run on `path`; its answer goes after `prefix`.
        public var pendingTransform: (module: ModuleReference, export: String, prefix: String)?

        public init(group: String, path: String, pendingTransform: (module: ModuleReference, export: String, prefix: String)? = nil) {
            self.group = group
            self.path = path
            self.pendingTransform = pendingTransform
        }
    }

    /// Resolves a canonical request path (`/users/123`, as routing normalised it).
    public func resolve(path: String) -> Resolution? {
        let trimmed = path.utf8.first == UInt8(ascii: "/") ? path.dropFirst() : path[...]
        let nameEnd = trimmed.firstIndex(of: "/") ?? trimmed.endIndex
        let name = String(trimmed[..<nameEnd])
        // What follows the name, with its leading `/` ("" for `/users`, "/" for `/users/`).
        let rest = String(trimmed[nameEnd...])
        if !name.isEmpty, let route = routes[name] {
            // A named route decides: no key and no catch-all is a 404, not a legacy prefix.
            return Self.resolve(rest: rest, in: route)
        }
        for core in legacy where core.pathPrefix.isEmpty || trimmed == core.pathPrefix || trimmed.hasPrefix(core.pathPrefix + "/") {
            let remainder = String(trimmed.dropFirst(core.pathPrefix.count))
            return Resolution(group: core.group, path: PathJoin.join(core.upstreamPath, remainder))
        }
        return nil
    }

    private static func resolve(rest: String, in route: Route) -> Resolution? {
        let bare = rest.drop { $0 == "/" }
        for rule in route.byPath {
            let matched = rule.key.isEmpty || bare == rule.key || bare.hasPrefix(rule.key + "/")
            guard matched else { continue }
            switch rule.transform {
            case .replace(let from, let to):
                return Resolution(group: route.group, path: PathJoin.join(rule.pathPrefix, PathJoin.replacingFirst(from, with: to, in: rest)))
            case .lua(let module, let export):
                return Resolution(group: route.group, path: rest, pendingTransform: (module, export, rule.pathPrefix))
            case nil:
                let remainder = rule.preserveMatchedPath || rule.key.isEmpty ? rest : String(rest.dropFirst(rest.count - bare.count + rule.key.count))
                return Resolution(group: route.group, path: PathJoin.join(rule.pathPrefix, remainder))
            }
        }
        guard route.byPath.isEmpty || route.pathPrefix != nil else { return nil }
        return Resolution(group: route.group, path: PathJoin.join(route.pathPrefix ?? "", rest))
    }

    static func ordered(_ rules: [PathRule]) -> [PathRule] {
        // Stable: equal specificity keeps the file's order.
        rules.enumerated().sorted { a, b in
            if a.element.segmentCount != b.element.segmentCount { return a.element.segmentCount > b.element.segmentCount }
            if a.element.key.count != b.element.key.count { return a.element.key.count > b.element.key.count }
            return a.offset < b.offset
        }.map(\.element)
    }
}

/// `transformPath`: a rewrite of the path after the route name (with its leading `/`) before
/// the rule's `pathPrefix` is put in front.
public enum PathTransform: Sendable, Equatable {
    /// `{ "replace": [from, to] }`: the first occurrence, as JavaScript's `String.replace`.
    case replace(String, String)
    /// `{ "module": "$import(./plugins/x)", "export": "name" }`: a Lua function
    /// `(path) -> path`, run with the gateway's Lua budgets.
    case lua(ModuleReference, String)
}

/// Joins URL and path parts with exactly one `/` between them.
public enum PathJoin {
    /// `join("/api/", "/123")` and `join("/api", "123")` are `/api/123`; `join(a, "")` is `a`;
    /// `join("/api", "/")` is `/api/` (a trailing slash is kept).
    public static func join(_ a: String, _ b: String) -> String {
        if b.isEmpty { return a }
        if a.isEmpty { return b.first == "/" ? b : "/" + b }
        switch (a.last == "/", b.first == "/") {
        case (true, true): return a + b.dropFirst()
        case (false, false): return a + "/" + b
        default: return a + b
        }
    }

    static func trimSlashes(_ s: String) -> String {
        String(s.drop { $0 == "/" }.reversed().drop { $0 == "/" }.reversed())
    }

    static func replacingFirst(_ from: String, with to: String, in text: String) -> String {
        guard !from.isEmpty, let range = text.range(of: from) else { return text }
        return text.replacingCharacters(in: range, with: to)
    }
}
