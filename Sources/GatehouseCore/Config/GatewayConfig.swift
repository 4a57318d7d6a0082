import Foundation
import HTTPTypes

/// Everything loaded from the config directory: validated, immutable.
public struct GatewayConfig: Sendable {
    public var routes: [RouteConfig]
    public var policies: [String: PolicyConfig]
    public var consumers: [ConsumerConfig]
    public var settings: GatewaySettings
    /// Upstream groups and the path-routing table (`upstreams.json`; empty without it).
    public var upstreams: UpstreamsConfig
    public var environment: ConfigEnvironment
    /// Non-fatal findings (e.g. a policy no route uses).
    public var warnings: [ConfigError]

    public static let routesFile = "routes.oas.json"
    public static let policiesFile = "policies.json"
    public static let consumersFile = "consumers.json"
    public static let settingsFile = "gatehouse.json"
    public static let upstreamsFile = "upstreams.json"

    /// Loads and validates `directory`; throws every problem found, each with file and pointer.
    public static func load(directory: String, processEnvironment: [String: String]? = nil) throws(ConfigErrors) -> GatewayConfig {
        var loader = ConfigLoader(directory: directory, environment: .load(dotEnvFile: directory + "/.env", process: processEnvironment))
        return try loader.load()
    }
}

private let httpMethods: [String: HTTPRequest.Method] = [
    "get": .get, "put": .put, "post": .post, "delete": .delete, "options": .options,
    "head": .head, "patch": .patch, "trace": .trace,
]

/// Reads the files of a config directory, collecting every error instead of stopping at one.
struct ConfigLoader {
    let directory: String
    let environment: ConfigEnvironment
    var errors: [ConfigError] = []
    var warnings: [ConfigError] = []
    /// `corsPolicies` of policies.json, read with the policies (routes refer to them).
    var cors: [String: CORSPolicyConfig] = [:]

    init(directory: String, environment: ConfigEnvironment) {
        self.directory = directory
        self.environment = environment
    }

    mutating func load() throws(ConfigErrors) -> GatewayConfig {
        let settings = loadSettings()
        let upstreams = loadUpstreams()
        // `upstreams.json` with path routes is a complete gateway on its own: without
        // `routes.oas.json` every request is routed by its table.
        let standalone = !upstreams.pathRoutes.isEmpty && !fileExists(GatewayConfig.routesFile)
        let policies = loadPolicies(required: !standalone)
        let routes = standalone ? Self.tableRoutes(location: ConfigError(file: directory + "/" + GatewayConfig.upstreamsFile, message: ""))
            : loadRoutes(policies: policies, upstreams: upstreams)
        let consumers = loadConsumers()
        for route in routes where route.cors == .anythingGoes {
            var w = route.location
            w.message = "\(route.method.rawValue) \(route.template.text) uses the CORS policy anything-goes: every site may call it with its visitors' credentials (for development only)"
            warnings.append(w)
        }
        if errors.isEmpty {
            let used = Set(routes.flatMap { $0.inbound + $0.outbound })
            for p in policies.values.sorted(by: { $0.name < $1.name }) where !used.contains(p.name) {
                var w = p.location
                w.message = "policy '\(p.name)' is not used by any route"
                warnings.append(w)
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return GatewayConfig(
            routes: routes, policies: policies, consumers: consumers, settings: settings, upstreams: upstreams, environment: environment,
            warnings: warnings)
    }

    func fileExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/" + name)
    }

    /// The routes of a gateway configured by `upstreams.json` alone: every method on every
    /// path (TRACE is not forwarded), answered through the path-routing table.
    static func tableRoutes(location: ConfigError) -> [RouteConfig] {
        let template = try! RouteTemplate("/{+path}")
        return httpMethods.values.filter { $0 != .trace }.sorted { $0.rawValue < $1.rawValue }.map { method in
            RouteConfig(
                template: template, method: method, operationId: nil,
                handler: .upstreamGroup(group: nil, forwardSearch: true, preserveHost: false), inbound: [], outbound: [], location: location)
        }
    }

    mutating func document(_ name: String, required: Bool) -> ConfigNode? {
        let path = directory + "/" + name
        guard FileManager.default.fileExists(atPath: path) else {
            if required { errors.append(ConfigError(file: path, message: "file not found")) }
            return nil
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            errors.append(ConfigError(file: path, message: "cannot read the file as UTF-8 text"))
            return nil
        }
        do {
            return try ConfigNode.parse(text: text, file: path, environment: environment)
        } catch {
            errors.append(error)
            return nil
        }
    }

    /// Records a failed step's error instead of propagating it, so one load reports them all.
    mutating func record<T>(_ result: Result<T, ConfigError>) -> T? {
        switch result {
        case .success(let value): return value
        case .failure(let error):
            errors.append(error)
            return nil
        }
    }

    // MARK: gatehouse.json

    private mutating func loadSettings() -> GatewaySettings {
        var settings = GatewaySettings()
        guard let root = document(GatewayConfig.settingsFile, required: false) else { return settings }
        _ = record(Result { () throws(ConfigError) in
            for (key, value) in try root.members() {
                switch key {
                case "connectTimeoutMs": settings.connectTimeoutMilliseconds = try positive(value)
                case "upstreamTimeoutMs": settings.upstreamTimeoutMilliseconds = try positive(value)
                case "upstreamIdleTimeoutSeconds": settings.upstreamIdleTimeoutSeconds = try positive(value)
                case "upstreamConnectionsPerLoop": settings.upstreamConnectionsPerLoop = try positive(value)
                case "upstreamCaFile": settings.upstreamCaFile = try caFile(value)
                case "upstreamTlsVerify": settings.upstreamTlsVerify = try value.bool()
                case "maxBufferedBodyBytes": settings.maxBufferedBodyBytes = try positive(value)
                case "maxRequestBodyBytes": settings.maxRequestBodyBytes = try positive(value)
                case "idleTimeoutSeconds": settings.idleTimeoutSeconds = try positive(value)
                case "requestTimeoutSeconds": settings.requestTimeoutSeconds = try positive(value)
                case "maxHeaderBytes": settings.maxHeaderBytes = try positive(value)
                case "maxRequestLineBytes": settings.maxRequestLineBytes = try positive(value)
                case "allowEncodedSlashes": settings.allowEncodedSlashes = try value.bool()
                case "maxConnections": settings.maxConnections = try positive(value)
                case "shutdownGraceSeconds": settings.shutdownGraceSeconds = try positive(value)
                case "luaInstructionBudget": settings.luaInstructionBudget = UInt64(try positive(value))
                case "luaTimeBudgetMs": settings.luaTimeBudgetMilliseconds = try positive(value)
                case "luaWallClockBudgetMs": settings.luaWallClockBudgetMilliseconds = try positive(value)
                case "luaMemoryLimitBytes": settings.luaMemoryLimitBytes = try positive(value)
                case "requestIdHeader":
                    guard let name = HTTPField.Name(try value.string()) else { throw value.error("not a valid header name") }
                    settings.requestIdHeader = name
                case "redis": settings.redis = try redisSettings(value)
                case "$schema": break
                default: throw value.error("unknown setting '\(key)'")
                }
            }
        })
        return settings
    }

    private func redisSettings(_ node: ConfigNode) throws(ConfigError) -> RedisSettings {
        let urlNode = try node.requiredMember("url")
        var redis = RedisSettings(url: try urlNode.string(), urlLocation: urlNode.error(""))
        for (key, value) in try node.members() {
            switch key {
            case "url": break
            case "connectTimeoutMs": redis.connectTimeoutMilliseconds = try positive(value, atMost: 600_000)
            case "commandTimeoutMs": redis.commandTimeoutMilliseconds = try positive(value, atMost: 600_000)
            case "caFile": redis.caFile = try caFile(value)
            case "tlsVerify": redis.tlsVerify = try value.bool()
            default: throw value.error("unknown redis setting '\(key)' (url, connectTimeoutMs, commandTimeoutMs, caFile, tlsVerify)")
            }
        }
        return redis
    }

    /// A readable CA file, relative to the config directory unless absolute.
    private func caFile(_ node: ConfigNode) throws(ConfigError) -> String {
        let path = try node.string()
        let resolved = path.hasPrefix("/") ? path : directory + "/" + path
        guard FileManager.default.isReadableFile(atPath: resolved) else { throw node.error("cannot read the CA file '\(path)'") }
        return resolved
    }

    func positive(_ node: ConfigNode, atMost limit: Int) throws(ConfigError) -> Int {
        let v = try positive(node)
        guard v <= limit else { throw node.error("must be at most \(limit)") }
        return v
    }

    func positive(_ node: ConfigNode) throws(ConfigError) -> Int {
        let v = try node.int()
        guard v > 0 else { throw node.error("must be greater than 0") }
        return v
    }

    // MARK: policies.json

    private mutating func loadPolicies(required: Bool) -> [String: PolicyConfig] {
        var out: [String: PolicyConfig] = [:]
        guard let root = document(GatewayConfig.policiesFile, required: required) else { return out }
        if let cors = record(Result { () throws(ConfigError) in try corsPolicies(root) }) { self.cors = cors }
        guard let list = record(Result { () throws(ConfigError) in try root.requiredMember("policies").elements() }) else { return out }
        for node in list {
            guard let policy = record(Result { () throws(ConfigError) in try policy(node) }) else { continue }
            if let existing = out[policy.name] {
                errors.append(node.error("duplicate policy name '\(policy.name)' (first defined at \(existing.location.pointer))"))
            } else {
                out[policy.name] = policy
            }
        }
        return out
    }

    private func policy(_ node: ConfigNode) throws(ConfigError) -> PolicyConfig {
        let nameNode = try node.requiredMember("name")
        let name = try nameNode.string()
        guard !name.isEmpty else { throw nameNode.error("a policy name cannot be empty") }
        let typeNode = try node.requiredMember("policyType")
        let type = try typeNode.string()
        var config = PolicyConfig(name: name, policyType: type, module: nil, export: nil, options: .object([:]), failOpen: false, location: node.error(""))
        if let budget = try node.member("budget") {
            for (key, value) in try budget.members() {
                switch key {
                case "instructions": config.instructionBudget = UInt64(try positive(value))
                case "timeMs": config.timeBudgetMilliseconds = try positive(value)
                case "wallClockMs": config.wallClockBudgetMilliseconds = try positive(value)
                default: throw value.error("unknown budget '\(key)' (instructions, timeMs, wallClockMs)")
                }
            }
        }
        if let options = try node.member("options") { config.options = try options.json() }
        if let fail = try node.member("failMode") {
            switch try fail.string() {
            case "open": config.failOpen = true
            case "closed": config.failOpen = false
            default: throw fail.error("failMode must be \"open\" or \"closed\"")
            }
        }
        switch type {
        case "custom-code-inbound", "custom-code-outbound":
            let handler = try node.requiredMember("handler")
            let moduleNode = try handler.requiredMember("module")
            let moduleText = try moduleNode.string()
            guard let module = ModuleReference.parse(moduleText) else {
                throw moduleNode.error("expected $import(./plugins/<name>), found '\(moduleText)'")
            }
            config.module = module
            config.export = try handler.member("export")?.string() ?? "default"
        case "api-key-inbound", "jwt-inbound":
            config.failOpen = false // authentication always fails closed
        case "rate-limit-inbound", "request-size-limit-inbound", "ip-restriction-inbound", "set-headers-inbound", "set-headers-outbound", "require-user-inbound":
            break
        default:
            throw typeNode.error("unknown policyType '\(type)' (known: custom-code-inbound, custom-code-outbound, api-key-inbound, jwt-inbound, rate-limit-inbound, request-size-limit-inbound, ip-restriction-inbound, set-headers-inbound, set-headers-outbound, require-user-inbound)")
        }
        return config
    }

    // MARK: routes.oas.json

    private mutating func loadRoutes(policies: [String: PolicyConfig], upstreams: UpstreamsConfig) -> [RouteConfig] {
        var routes: [RouteConfig] = []
        guard let root = document(GatewayConfig.routesFile, required: true) else { return routes }
        guard let paths = record(Result { () throws(ConfigError) in try root.requiredMember("paths").members() }) else { return routes }
        for (pathText, item) in paths {
            let template: RouteTemplate
            do {
                template = try RouteTemplate(pathText)
            } catch {
                errors.append(item.error("invalid path '\(pathText)': \(error)"))
                continue
            }
            guard let operations = record(Result { () throws(ConfigError) in try item.members() }) else { continue }
            for (key, operation) in operations {
                guard let method = httpMethods[key] else { continue } // summary, parameters, x-*, ...
                if let route = record(Result { () throws(ConfigError) in try route(template: template, method: method, operation: operation, policies: policies, upstreams: upstreams) }) {
                    routes.append(route)
                }
            }
        }
        checkOverlaps(routes)
        return routes
    }

    private func route(
        template: RouteTemplate, method: HTTPRequest.Method, operation: ConfigNode, policies: [String: PolicyConfig], upstreams: UpstreamsConfig
    ) throws(ConfigError) -> RouteConfig {
        let ext = try operation.requiredMember("x-gatehouse-route")
        let handler = try handlerConfig(try ext.requiredMember("handler"), template: template, upstreams: upstreams)
        var inbound: [String] = [], outbound: [String] = []
        if let p = try ext.member("policies") {
            for (key, list) in try p.members() {
                switch key {
                case "inbound": inbound = try checked(list, direction: "inbound", policies: policies)
                case "outbound": outbound = try checked(list, direction: "outbound", policies: policies)
                default: throw list.error("unknown member '\(key)' (expected inbound or outbound)")
                }
            }
        }
        var route = RouteConfig(
            template: template, method: method, operationId: try operation.member("operationId")?.string(),
            handler: handler, inbound: inbound, outbound: outbound, location: operation.error(""))
        if let corsNode = try ext.member("corsPolicy") {
            let name = try corsNode.string()
            switch name {
            case "none": break
            case "anything-goes": route.cors = .anythingGoes
            default:
                guard let policy = cors[name] else {
                    throw corsNode.error("unknown CORS policy '\(name)' (corsPolicies of policies.json: \(cors.keys.sorted().joined(separator: ", ")); built in: anything-goes, none)")
                }
                route.cors = policy
            }
        }
        return route
    }

    private func checked(_ list: ConfigNode, direction: String, policies: [String: PolicyConfig]) throws(ConfigError) -> [String] {
        var names: [String] = []
        for element in try list.elements() {
            let name = try element.string()
            guard let policy = policies[name] else {
                throw element.error("unknown policy '\(name)' (not in \(GatewayConfig.policiesFile))")
            }
            let isOutbound = policy.policyType.hasSuffix("-outbound")
            if (direction == "outbound") != isOutbound {
                throw element.error("policy '\(name)' is \(policy.policyType) and cannot be used as \(direction)")
            }
            names.append(name)
        }
        return names
    }

    private func handlerConfig(_ node: ConfigNode, template: RouteTemplate, upstreams: UpstreamsConfig) throws(ConfigError) -> HandlerConfig {
        let typeNode = try node.requiredMember("type")
        let type = try typeNode.string()
        let options = try node.member("options")
        func option(_ key: String) throws(ConfigError) -> ConfigNode? { try options?.member(key) }
        func requiredOption(_ key: String) throws(ConfigError) -> ConfigNode {
            guard let o = try option(key) else { throw (options ?? node).error("handler '\(type)' needs options.\(key)") }
            return o
        }
        let forwardSearch = try option("forwardSearch")?.bool() ?? true
        let preserveHost = try option("preserveHost")?.bool() ?? false
        switch type {
        case "url-rewrite":
            let patternNode = try requiredOption("rewritePattern")
            let text = try patternNode.string()
            let pattern: RewritePattern
            do {
                pattern = try RewritePattern(text)
            } catch {
                throw patternNode.error(error.description)
            }
            for case .param(let name) in pattern.parts where !template.segments.contains(where: { $0 == .parameter(name) || $0 == .greedy(name) }) {
                throw patternNode.error("${params.\(name)} is not a parameter of the route path \(template.text)")
            }
            return .urlRewrite(pattern: pattern, forwardSearch: forwardSearch, preserveHost: preserveHost)
        case "url-forward":
            let baseNode = try requiredOption("baseUrl")
            let base = try baseNode.string()
            guard base.hasPrefix("http://") || base.hasPrefix("https://") else { throw baseNode.error("baseUrl must start with http:// or https://") }
            // Every request would be refused (a dot segment is never sent): say so at load.
            if PathCoding.hasDotSegment(inURL: base) { throw baseNode.error("baseUrl has a '.' or '..' path segment") }
            return .urlForward(baseUrl: base.hasSuffix("/") ? String(base.dropLast()) : base, forwardSearch: forwardSearch, preserveHost: preserveHost)
        case "static":
            let status = try option("status")?.int() ?? 200
            guard (100...599).contains(status) else { throw (try option("status"))!.error("status must be 100–599") }
            var headers: [(String, String)] = []
            if let h = try option("headers") {
                for (k, v) in try h.members() {
                    guard HTTPField.Name(k) != nil else { throw v.error("invalid header name '\(k)'") }
                    headers.append((k, try v.string()))
                }
            }
            var body = ""
            if let b = try option("body") {
                if case .scalar = b.node { body = try b.string() } else {
                    body = String(decoding: try b.json().serialized(), as: UTF8.self)
                    if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("content-type", "application/json")) }
                }
            }
            return .staticResponse(status: status, headers: headers, body: body)
        case "upstream-group":
            if let groupNode = try option("group") {
                let name = try groupNode.string()
                guard upstreams.group(named: name) != nil else {
                    throw groupNode.error("unknown upstream group '\(name)' (not in \(GatewayConfig.upstreamsFile))")
                }
                return .upstreamGroup(group: name, forwardSearch: forwardSearch, preserveHost: preserveHost)
            }
            guard !upstreams.pathRoutes.isEmpty else {
                throw node.error("handler 'upstream-group' needs options.group, or coreGroups routes / cores in \(GatewayConfig.upstreamsFile) to route by")
            }
            return .upstreamGroup(group: nil, forwardSearch: forwardSearch, preserveHost: preserveHost)
        case "aggregate":
            return .aggregate(try aggregate(options, at: node, template: template, upstreams: upstreams))
        case "lua":
            let moduleNode = try node.requiredMember("module")
            let text = try moduleNode.string()
            guard let module = ModuleReference.parse(text) else { throw moduleNode.error("expected $import(./plugins/<name>), found '\(text)'") }
            return .lua(module: module, export: try node.member("export")?.string() ?? "default", options: try options?.json() ?? .object([:]))
        default:
            throw typeNode.error("unknown handler type '\(type)' (known: url-rewrite, url-forward, upstream-group, aggregate, static, lua)")
        }
    }

    /// Two operations with the same method and the same template shape can never both be
    /// reached: the later one is reported.
    private mutating func checkOverlaps(_ routes: [RouteConfig]) {
        var seen: [String: RouteConfig] = [:]
        for route in routes {
            let key = route.method.rawValue + " " + route.template.shape
            if let first = seen[key] {
                var e = route.location
                e.message = route.template.text == first.template.text
                    ? "duplicate route \(route.label) (first declared at line \(first.location.line ?? 0))"
                    : "route \(route.label) is shadowed by \(first.label) (line \(first.location.line ?? 0)): both match the same paths"
                errors.append(e)
            } else {
                seen[key] = route
            }
        }
    }

    // MARK: consumers.json

    private mutating func loadConsumers() -> [ConsumerConfig] {
        var out: [ConsumerConfig] = []
        guard let root = document(GatewayConfig.consumersFile, required: false) else { return out }
        guard let list = record(Result { () throws(ConfigError) in try root.requiredMember("consumers").elements() }) else { return out }
        var subs: Set<String> = []
        for node in list {
            guard let consumer = record(Result { () throws(ConfigError) in try consumer(node) }) else { continue }
            if !subs.insert(consumer.sub).inserted {
                errors.append(node.error("duplicate consumer sub '\(consumer.sub)'"))
            }
            out.append(consumer)
        }
        return out
    }

    private func consumer(_ node: ConfigNode) throws(ConfigError) -> ConsumerConfig {
        let sub = try node.requiredMember("sub").string()
        var keys: [ConsumerKey] = []
        for key in try node.requiredMember("keys").elements() {
            let hashNode = try key.requiredMember("sha256")
            let hex = try hashNode.string()
            guard let digest = Self.hexBytes(hex), digest.count == 32 else {
                throw hashNode.error("expected the 64 hex digits of the key's SHA-256 digest")
            }
            var expires: Date?
            if let expiresNode = try key.member("expiresAt") {
                guard let date = ISO8601DateFormatter().date(from: try expiresNode.string()) else {
                    throw expiresNode.error("expected an ISO 8601 time such as 2027-01-31T00:00:00Z")
                }
                expires = date
            }
            keys.append(ConsumerKey(sha256: digest, id: try key.member("id")?.string(), expiresAt: expires))
        }
        let metadataNode = try node.member("metadata")
        let metadata = try metadataNode?.json() ?? .object([:])
        guard case .object = metadata else { throw metadataNode!.error("metadata must be an object") }
        let size = metadata.serialized().count
        guard size <= ConsumerConfig.maxMetadataBytes else {
            throw metadataNode!.error("metadata of '\(sub)' is \(size) bytes; the limit is \(ConsumerConfig.maxMetadataBytes)")
        }
        return ConsumerConfig(sub: sub, keys: keys, metadata: metadata)
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = PathCoding.hexValue(chars[i]), let lo = PathCoding.hexValue(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
