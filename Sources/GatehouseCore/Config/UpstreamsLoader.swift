import Foundation
import HTTPTypes

/// Reading `upstreams.json`: `groups`, seed 004's `coreGroups` (a group with named path
/// routes) and legacy `cores` (a group chosen by a path prefix). Every group accepts the same
/// options; every error names file, line and pointer.
extension ConfigLoader {
    mutating func loadUpstreams() -> UpstreamsConfig {
        guard let root = document(GatewayConfig.upstreamsFile, required: false) else { return UpstreamsConfig() }
        var groups: [UpstreamGroupConfig] = []
        var routes: [ProxyRouteTable.Route] = []
        var legacy: [ProxyRouteTable.LegacyCore] = []
        var groupLines: [String: Int] = [:]
        var routeLines: [String: Int] = [:]
        var prefixLines: [String: Int] = [:]

        func claim(_ name: String, in seen: inout [String: Int], at node: ConfigNode, what: String) -> ConfigError? {
            if let first = seen[name] { return node.error("duplicate \(what) '\(name)' (first declared at line \(first))") }
            seen[name] = node.line ?? 0
            return nil
        }

        guard let members = record(Result { () throws(ConfigError) in try root.members() }) else { return UpstreamsConfig() }
        for (key, value) in members {
            switch key {
            case "$schema":
                continue
            case "groups":
                for node in record(Result { () throws(ConfigError) in try value.elements() }) ?? [] {
                    guard let group = record(Result { () throws(ConfigError) in
                        let nameNode = try node.requiredMember("name")
                        return try upstreamGroup(node, name: try Self.groupName(nameNode), extraKeys: ["name"], baseURL: nil)
                    }) else { continue }
                    if let e = claim(group.name, in: &groupLines, at: node, what: "upstream group") { errors.append(e); continue }
                    groups.append(group)
                }
            case "coreGroups":
                for node in record(Result { () throws(ConfigError) in try value.elements() }) ?? [] {
                    guard let (group, groupRoutes) = record(Result { () throws(ConfigError) in
                        let name = try Self.groupName(try node.requiredMember("coreName"))
                        let group = try upstreamGroup(node, name: name, extraKeys: ["coreName", "baseUrl", "routes"], baseURL: try node.member("baseUrl"))
                        var out: [(ProxyRouteTable.Route, ConfigNode)] = []
                        for routeNode in try node.requiredMember("routes").elements() {
                            out.append((try proxyRoute(routeNode, group: name), routeNode))
                        }
                        return (group, out)
                    }) else { continue }
                    if let e = claim(group.name, in: &groupLines, at: node, what: "upstream group") { errors.append(e); continue }
                    groups.append(group)
                    for (route, node) in groupRoutes {
                        if let e = claim(route.name, in: &routeLines, at: node, what: "route name") { errors.append(e); continue }
                        routes.append(route)
                    }
                }
            case "cores":
                for node in record(Result { () throws(ConfigError) in try value.elements() }) ?? [] {
                    guard let (group, core) = record(Result { () throws(ConfigError) in
                        let name = try Self.groupName(try node.requiredMember("name"))
                        if let targets = try node.member("targets") {
                            throw targets.error("a legacy cores entry has one url; use coreGroups for several targets")
                        }
                        var group = try upstreamGroup(node, name: name, extraKeys: ["name", "url", "pathPrefix"], baseURL: try node.requiredMember("url"))
                        let prefixNode = try node.requiredMember("pathPrefix")
                        let prefix = try prefixNode.string()
                        guard prefix.hasPrefix("/") else { throw prefixNode.error("pathPrefix must start with '/'") }
                        // The url's path belongs to the route (kept with its trailing slash,
                        // as a coreGroups pathPrefix is); its origin is the target.
                        let url = try node.requiredMember("url").string()
                        let (origin, path) = Self.splitOrigin(url)
                        group.targets[0].url = origin
                        return (group, ProxyRouteTable.LegacyCore(group: name, pathPrefix: prefix, upstreamPath: path))
                    }) else { continue }
                    if let e = claim(group.name, in: &groupLines, at: node, what: "upstream group") { errors.append(e); continue }
                    if let e = claim(core.pathPrefix, in: &prefixLines, at: node, what: "cores pathPrefix") { errors.append(e); continue }
                    groups.append(group)
                    legacy.append(core)
                }
            default:
                errors.append(value.error("unknown member '\(key)' (expected groups, coreGroups or cores)"))
            }
        }
        return UpstreamsConfig(groups: groups, pathRoutes: ProxyRouteTable(routes: routes, legacy: legacy), file: directory + "/" + GatewayConfig.upstreamsFile)
    }

    /// `http://h:1/a/b/` → (`http://h:1`, `/a/b/`).
    static func splitOrigin(_ url: String) -> (String, String) {
        let schemeEnd = url.range(of: "://").map { url.distance(from: url.startIndex, to: $0.upperBound) } ?? 0
        let afterScheme = url.dropFirst(schemeEnd)
        guard let slash = afterScheme.firstIndex(of: "/") else { return (url, "") }
        return (String(url[..<slash]), String(url[slash...]))
    }

    private static func groupName(_ node: ConfigNode) throws(ConfigError) -> String {
        let name = try node.string()
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
            throw node.error("a group name is non-empty printable ASCII without spaces or '/'")
        }
        return name
    }

    /// The options every group accepts; `extraKeys` are the ones its list adds (`coreName`, …).
    private func upstreamGroup(_ node: ConfigNode, name: String, extraKeys: Set<String>, baseURL: ConfigNode?) throws(ConfigError) -> UpstreamGroupConfig {
        var group = UpstreamGroupConfig(name: name, targets: [], location: node.error(""))
        if let baseURL { group.targets.append(UpstreamTargetConfig(url: try targetURL(baseURL))) }
        for (key, value) in try node.members() {
            switch key {
            case _ where extraKeys.contains(key):
                continue
            case "targets":
                for t in try value.elements() {
                    var target = UpstreamTargetConfig(url: try targetURL(try t.requiredMember("url")))
                    for (k, v) in try t.members() {
                        switch k {
                        case "url": continue
                        case "weight": target.weight = try positive(v)
                        case "priority": target.priority = try positive(v)
                        default: throw v.error("unknown member '\(k)' of a target (url, weight, priority)")
                        }
                    }
                    if group.targets.contains(where: { $0.url == target.url }) { throw t.error("target \(target.url) is listed twice") }
                    group.targets.append(target)
                }
            case "timeouts":
                for (k, v) in try value.members() {
                    switch k {
                    case "connectMs": group.connectTimeoutMilliseconds = try positive(v)
                    case "responseMs": group.responseTimeoutMilliseconds = try positive(v)
                    default: throw v.error("unknown timeout '\(k)' (connectMs, responseMs)")
                    }
                }
            case "loadBalancing":
                group.loadBalancing = try loadBalancing(value)
            case "retryOn":
                group.retryStatuses = try serverErrorStatuses(value, "only 5xx answers can be retried on another target")
            case "circuitBreaker":
                if case .scalar = value.node, (try? value.bool()) == false {
                    group.circuitBreaker = nil
                } else {
                    group.circuitBreaker = try circuitBreaker(value)
                }
            case "healthCheck":
                for (k, v) in try value.members() {
                    switch k {
                    case "passive":
                        for (pk, pv) in try v.members() {
                            guard pk == "statuses" else { throw pv.error("unknown member '\(pk)' of healthCheck.passive (statuses)") }
                            group.failureStatuses = try serverErrorStatuses(pv, "only 5xx statuses can count as a target's failure (a 4xx is the client's)")
                        }
                    case "active":
                        group.activeCheck = try activeCheck(v)
                    default:
                        throw v.error("unknown member '\(k)' of healthCheck (passive, active)")
                    }
                }
            default:
                throw value.error("unknown member '\(key)' of upstream group '\(name)'")
            }
        }
        guard !group.targets.isEmpty else {
            throw node.error("upstream group '\(name)' has no target (give \(baseURL == nil && !extraKeys.contains("baseUrl") ? "targets" : "baseUrl or targets"))")
        }
        return group
    }

    /// A list of 5xx statuses; anything else is `refusal`.
    private func serverErrorStatuses(_ node: ConfigNode, _ refusal: String) throws(ConfigError) -> Set<Int> {
        var statuses: Set<Int> = []
        for s in try node.elements() {
            let code = try s.int()
            guard (500...599).contains(code) else { throw s.error(refusal) }
            statuses.insert(code)
        }
        return statuses
    }

    private func targetURL(_ node: ConfigNode) throws(ConfigError) -> String {
        var url = try node.string()
        let lower = url.lowercased()
        guard let schemeEnd = lower.hasPrefix("http://") ? 7 : lower.hasPrefix("https://") ? 8 : nil else {
            throw node.error("a target URL starts with http:// or https://")
        }
        let afterScheme = url.utf8.dropFirst(schemeEnd)
        let authority = afterScheme.prefix { $0 != UInt8(ascii: "/") }
        guard !authority.isEmpty, !authority.contains(UInt8(ascii: "@")) else { throw node.error("a target URL needs a host (and no user info)") }
        guard !url.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") || $0 <= 0x20 || $0 >= 0x7F }) else {
            throw node.error("a target URL is scheme, host, port and an optional base path: no query, fragment, space or non-ASCII")
        }
        if PathCoding.hasDotSegment(inURL: url) { throw node.error("a target URL has a '.' or '..' path segment") }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    private func loadBalancing(_ node: ConfigNode) throws(ConfigError) -> LoadBalancing {
        if case .scalar = node.node {
            switch try node.string() {
            case "round-robin": return .roundRobin
            case "least-outstanding": return .leastOutstanding
            default: throw node.error("loadBalancing is \"round-robin\", \"least-outstanding\" or { \"type\": \"consistent-hash\", \"key\": ... }")
            }
        }
        let type = try node.requiredMember("type")
        guard try type.string() == "consistent-hash" else { throw type.error("type is \"consistent-hash\" (or give \"round-robin\" / \"least-outstanding\" as a string)") }
        let keyNode = try node.requiredMember("key")
        let key = try keyNode.string()
        for (k, v) in try node.members() where k != "type" && k != "key" { throw v.error("unknown member '\(k)' of loadBalancing") }
        switch key {
        case "consumer": return .consistentHash(.consumer)
        case "client-ip": return .consistentHash(.clientAddress)
        case _ where key.hasPrefix("header:"):
            guard let name = HTTPField.Name(String(key.dropFirst("header:".count))) else { throw keyNode.error("not a valid header name") }
            return .consistentHash(.header(name))
        case _ where key.hasPrefix("custom:") && key.count > "custom:".count:
            return .consistentHash(.custom(String(key.dropFirst("custom:".count))))
        default:
            throw keyNode.error("key is \"consumer\", \"client-ip\", \"header:<name>\" or \"custom:<context.custom name>\"")
        }
    }

    private func circuitBreaker(_ node: ConfigNode) throws(ConfigError) -> CircuitBreakerConfig {
        var breaker = CircuitBreakerConfig()
        var maxOpen: Int?
        for (k, v) in try node.members() {
            switch k {
            case "threshold": breaker.threshold = try positive(v)
            case "timeout": breaker.openMilliseconds = try positive(v)
            case "halfOpenMax": breaker.halfOpenMax = try positive(v)
            case "maxTimeout": maxOpen = try positive(v)
            case "failureRate":
                var rate = CircuitBreakerConfig.FailureRate(rate: 0.5, windowMilliseconds: 10_000, minimumRequests: 20)
                for (rk, rv) in try v.members() {
                    switch rk {
                    case "rate":
                        guard case .scalar(let s) = rv.node, let r = Double(s.string), r > 0, r <= 1 else { throw rv.error("rate is a number in (0, 1]") }
                        rate.rate = r
                    case "window": rate.windowMilliseconds = try positive(rv)
                    case "minimumRequests": rate.minimumRequests = try positive(rv)
                    default: throw rv.error("unknown member '\(rk)' of failureRate (rate, window, minimumRequests)")
                    }
                }
                breaker.failureRate = rate
            default:
                throw v.error("unknown member '\(k)' of circuitBreaker (threshold, timeout, halfOpenMax, maxTimeout, failureRate)")
            }
        }
        breaker.maxOpenMilliseconds = maxOpen ?? breaker.openMilliseconds
        if breaker.maxOpenMilliseconds < breaker.openMilliseconds {
            throw node.error("maxTimeout (\(breaker.maxOpenMilliseconds) ms) is below timeout (\(breaker.openMilliseconds) ms)")
        }
        return breaker
    }

    private func activeCheck(_ node: ConfigNode) throws(ConfigError) -> ActiveHealthCheck {
        let pathNode = try node.requiredMember("path")
        var check = ActiveHealthCheck(path: try pathNode.string())
        guard check.path.hasPrefix("/"), check.path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw pathNode.error("path starts with '/' and holds no space or non-ASCII")
        }
        for (k, v) in try node.members() {
            switch k {
            case "path": continue
            case "intervalMs": check.intervalMilliseconds = try positive(v)
            case "timeoutMs": check.timeoutMilliseconds = try positive(v)
            case "healthyThreshold": check.healthyThreshold = try positive(v)
            case "unhealthyThreshold": check.unhealthyThreshold = try positive(v)
            default: throw v.error("unknown member '\(k)' of healthCheck.active (path, intervalMs, timeoutMs, healthyThreshold, unhealthyThreshold)")
            }
        }
        return check
    }

    /// One `coreGroups[].routes[]` entry.
    private func proxyRoute(_ node: ConfigNode, group: String) throws(ConfigError) -> ProxyRouteTable.Route {
        let nameNode = try node.requiredMember("name")
        let name = try nameNode.string()
        guard !name.isEmpty, !name.contains("/"), PathCoding.encodePathSegment(name) == name else {
            throw nameNode.error("a route name is one path segment (no '/', nothing that needs %-encoding)")
        }
        var prefix: String?
        var rules: [ProxyRouteTable.PathRule] = []
        for (k, v) in try node.members() {
            switch k {
            case "name": continue
            case "pathPrefix": prefix = try pathPrefix(v)
            case "routeByPath":
                var keys: Set<String> = []
                for (key, ruleNode) in try v.members() {
                    var rule = ProxyRouteTable.PathRule(key: key, pathPrefix: "")
                    guard keys.insert(rule.key).inserted else { throw ruleNode.error("routeByPath key '\(key)' is the same as another once its slashes are trimmed") }
                    if !rule.key.isEmpty, rule.key.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                        throw ruleNode.error("routeByPath key '\(key)' has an empty or dot segment")
                    }
                    var sawPrefix = false
                    for (rk, rv) in try ruleNode.members() {
                        switch rk {
                        case "pathPrefix": rule.pathPrefix = try pathPrefix(rv); sawPrefix = true
                        case "preserveMatchedPath": rule.preserveMatchedPath = try rv.bool()
                        case "transformPath": rule.transform = try transform(rv)
                        default: throw rv.error("unknown member '\(rk)' of a routeByPath entry (pathPrefix, preserveMatchedPath, transformPath)")
                        }
                    }
                    guard sawPrefix else { throw ruleNode.error("routeByPath '\(key)' needs a pathPrefix") }
                    rules.append(rule)
                }
            default:
                throw v.error("unknown member '\(k)' of a route (name, pathPrefix, routeByPath)")
            }
        }
        guard prefix != nil || !rules.isEmpty else { throw node.error("route '\(name)' needs a pathPrefix or routeByPath") }
        return ProxyRouteTable.Route(name: name, group: group, pathPrefix: prefix, byPath: rules)
    }

    private func pathPrefix(_ node: ConfigNode) throws(ConfigError) -> String {
        let prefix = try node.string()
        guard prefix.isEmpty || prefix.hasPrefix("/") else { throw node.error("pathPrefix starts with '/'") }
        guard !prefix.contains("//"), !prefix.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) else {
            throw node.error("pathPrefix is a path: no '//', query, fragment, space or non-ASCII")
        }
        if prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) { throw node.error("pathPrefix has a '.' or '..' segment") }
        return prefix
    }

    private func transform(_ node: ConfigNode) throws(ConfigError) -> PathTransform {
        if let replace = try node.member("replace") {
            let parts = try replace.elements()
            guard parts.count == 2 else { throw replace.error("replace is [from, to]") }
            let from = try parts[0].string()
            guard !from.isEmpty else { throw parts[0].error("the text to replace cannot be empty") }
            for (k, v) in try node.members() where k != "replace" { throw v.error("unknown member '\(k)' beside replace") }
            return .replace(from, try parts[1].string())
        }
        guard let moduleNode = try node.member("module") else {
            throw node.error("transformPath is { \"replace\": [from, to] } or { \"module\": \"$import(./plugins/<name>)\", \"export\": <function> }")
        }
        let text = try moduleNode.string()
        guard let module = ModuleReference.parse(text) else { throw moduleNode.error("expected $import(./plugins/<name>), found '\(text)'") }
        for (k, v) in try node.members() where k != "module" && k != "export" { throw v.error("unknown member '\(k)' of transformPath (replace, or module and export)") }
        return .lua(module, try node.member("export")?.string() ?? "default")
    }
}
