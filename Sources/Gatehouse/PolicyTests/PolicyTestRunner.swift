import GatehouseCore
public import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
public import Logging
import NIOCore
import NIOPosix

/// Runs the policy tests of a configuration in-process (`gatehouse test`): every
/// `*_test.lua` file in the plugin directories returns a list of cases such as
///
/// ```lua
/// local t = require "gatehouse.test"
/// return {
///   { name = "sandbox keys go to the sandbox", policy = "environment-routing",
///     request = { path = "/v1/x", user = { sub = "a", data = { environment = "sandbox" } } },
///     check = function(result) t.equal(result.context.custom.downstreamUrl, "http://…") end },
///   { name = "the whole route", route = "GET /v1/charges",
///     request = { headers = { authorization = "Bearer …" } }, upstream = { status = 200, body = "{}" },
///     check = function(result) t.equal(result.upstream.url, "http://…/charges") end },
/// }
/// ```
///
/// A policy case runs one Lua policy; a route case runs the whole route (built-in and Lua
/// policies, handler) with the upstream replaced by the case's `upstream` answer.
public enum PolicyTestRunner {
    public struct CaseResult: Sendable {
        public let file: String
        public let name: String
        public let failure: String?
        public var passed: Bool { failure == nil }
    }

    /// Runs the test files found in `testDirectories` (default: the first plugin directory,
    /// the deployment's own; shared directories' tests assume their own configuration).
    public static func run(
        configDirectory: String, pluginDirectories: [String], testDirectories: [String]? = nil, logger: Logger,
        environment: [String: String]? = nil
    ) async throws(SnapshotError) -> [CaseResult] {
        let testDirectories = testDirectories ?? Array(pluginDirectories.prefix(1))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // Policies that call http.fetch in a test reach real services (routes' upstreams are stubbed).
        let client = UpstreamClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await client.shutdown() } }
        let groupRegistry = UpstreamGroups(client: nil, logger: logger)
        let snapshot = try await Snapshot.load(
            configDirectory: configDirectory, pluginDirectories: pluginDirectories, loops: [loop], generation: 1,
            logger: logger, environment: environment,
            services: RuntimeServices(fetcher: UpstreamFetcher(client: client, groups: groupRegistry), upstreams: GroupDirectory(groups: groupRegistry)))
        // What http.fetch by group name and the upstreams table see (no active checks).
        _ = groupRegistry.install(snapshot.config.upstreams, settings: snapshot.config.settings)
        let runtime = snapshot.runtime(for: loop)
        var results: [CaseResult] = []
        let modules = snapshot.sources.files.filter { $0.key.hasSuffix("_test") && testDirectories.contains($0.value.directory) }
        for module in modules.keys.sorted() {
            let file = snapshot.sources.files[module]!.chunkName
            switch await runtime.testCases(module: module) {
            case .failure(let error):
                results.append(CaseResult(file: file, name: "(loading the test file)", failure: error.message))
            case .success(let cases):
                for testCase in cases {
                    let (result, state) = await run(testCase, snapshot: snapshot, runtime: runtime, logger: logger)
                    let failure = await runtime.check(testCase, result: result, state: state)
                    if let state { await runtime.finish(state) }
                    results.append(CaseResult(file: file, name: testCase.name, failure: failure?.message))
                }
            }
        }
        return results
    }

    /// Runs one case and describes what happened as the `result` table its check receives.
    static func run(_ testCase: PolicyRuntime.TestCase, snapshot: Snapshot, runtime: PolicyRuntime, logger: Logger) async -> (JSONValue, RequestState?) {
        let spec = testCase.request
        var method = spec["method"]?.stringValue.flatMap { HTTPRequest.Method($0.uppercased()) } ?? .get
        var target = spec["path"]?.stringValue ?? "/"
        if let route = testCase.route {
            let parts = route.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let m = HTTPRequest.Method(parts[0].uppercased()) {
                method = m
                target = String(parts[1])
            }
        }
        let split = target.split(separator: "?", maxSplits: 1)
        let path = String(split.first ?? "/")
        var query = split.count > 1 ? String(split[1]) : nil
        if let items = spec["query"]?.objectValue, !items.isEmpty {
            let encoded = items.sorted { $0.key < $1.key }.map {
                PathCoding.encodeQueryComponent($0.key) + "=" + PathCoding.encodeQueryComponent($0.value.stringValue ?? String(decoding: $0.value.serialized(), as: UTF8.self))
            }.joined(separator: "&")
            query = query.map { $0 + "&" + encoded } ?? encoded
        }
        var headers = HTTPFields()
        for (name, value) in spec["headers"]?.objectValue ?? [:] {
            if let field = HTTPField.Name(name) { headers[field] = value.stringValue ?? String(decoding: value.serialized(), as: UTF8.self) }
        }
        // The server's normaliser: a path it would refuse is reported, not routed as `/`.
        let segments: [String]
        do {
            segments = try PathCoding.segments(of: path[...], allowEncodedSlashes: snapshot.config.settings.allowEncodedSlashes)
        } catch {
            return (.object(["outcome": "bad-path", "error": .string(error.detail)]), nil)
        }
        let match = snapshot.routes.match(method: method, segments: segments)
        var routeIndex: Int?
        var route = RouteConfig.synthetic(method: method, source: "gatehouse test")
        var params: [(name: String, value: String)] = []
        if case .found(let index, let found, let p) = match {
            routeIndex = index
            route = found
            params = p
        }
        let state = RequestState(
            requestId: RequestID.next(), method: method,
            path: PathCoding.canonicalPath(segments, trailingSlash: path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/")),
            query: query, headers: headers, body: body(spec["body"]),
            scheme: "http", authority: "gatehouse.test", clientAddress: "127.0.0.1", params: params, route: route)
        state.pathSegments = segments
        if let user = spec["user"], user != .null { state.setUser(user) }

        var result: [String: JSONValue] = [:]
        if let name = testCase.policy {
            guard let policy = snapshot.config.policies[name], policy.isLua else {
                return (.object(["outcome": "error", "error": .string("'\(name)' is not a Lua policy of this configuration")]), state)
            }
            let outcome: PolicyRuntime.Outcome
            if policy.policyType == "custom-code-outbound" {
                let r = testCase.response
                var fields = HTTPFields()
                for (k, v) in r["headers"]?.objectValue ?? [:] { if let f = HTTPField.Name(k) { fields[f] = v.stringValue ?? "" } }
                let response = ResponseState(status: HTTPResponse.Status(code: Int(r["status"]?.intValue ?? 200)), headers: fields, body: body(r["body"]))
                outcome = await runtime.runOutbound(policy: name, response: response, state: state)
            } else {
                outcome = await runtime.runInbound(policy: name, state: state)
            }
            switch outcome {
            case .proceed, .value: result["outcome"] = "continue"
            case .respond(let response):
                result["outcome"] = "respond"
                result["response"] = describe(response)
            case .failed(let failure):
                result["outcome"] = "error"
                result["error"] = .string(failure.message)
            }
        } else {
            guard let routeIndex else {
                return (.object(["outcome": "no-route", "error": .string("no route matches \(method.rawValue) \(path)")]), state)
            }
            let stub = StubUpstream(answer: testCase.upstream)
            // Fresh groups per case (every breaker closed): the stub answers for every target.
            let groups = UpstreamGroups(client: nil, logger: logger).install(snapshot.config.upstreams, settings: snapshot.config.settings)
            let response = await RequestPipeline(upstream: stub, logger: logger)
                .handle(state, route: routeIndex, snapshot: snapshot, groups: groups, runtime: runtime)
            result["outcome"] = "respond"
            result["response"] = describe(response)
            if let sent = stub.request {
                result["upstream"] = .object([
                    "url": .string(sent.url), "method": .string(sent.method.rawValue),
                    "headers": headersObject(sent.headers), "body": text(sent.body),
                ])
            }
        }
        result["request"] = .object([
            "method": .string(state.method.rawValue), "path": .string(state.path), "url": .string(state.url),
            "query": .object(Dictionary(PathCoding.queryItems((state.query ?? "")[...]).map { ($0.name, JSONValue.string($0.value)) }, uniquingKeysWith: { $1 })),
            "headers": headersObject(state.headers), "body": text(state.body), "user": state.user ?? .null,
        ])
        return (.object(result), state)
    }

    static func body(_ value: JSONValue?) -> MessageBody {
        switch value {
        case .none, .some(.null): .empty
        case .some(.string(let s)): .text(s)
        case .some(let other): .buffered(ByteBuffer(bytes: other.serialized()))
        }
    }

    static func text(_ body: MessageBody) -> JSONValue {
        switch body {
        case .empty: .null
        case .buffered(let buffer): .string(String(buffer: buffer))
        case .stream: .string("(streamed)")
        }
    }

    static func headersObject(_ fields: HTTPFields) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for field in fields { out[field.name.canonicalName] = .string(fields[field.name] ?? field.value) }
        return .object(out)
    }

    static func describe(_ response: ResponseState) -> JSONValue {
        .object(["status": .int(Int64(response.status.code)), "headers": headersObject(response.headers), "body": text(response.body)])
    }
}
