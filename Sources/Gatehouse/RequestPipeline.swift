import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
import Logging
import NIOCore

/// What happens to a matched request: inbound policies, the handler, outbound policies.
/// Shared by the server and `gatehouse test` (which passes a stub upstream).
struct RequestPipeline: Sendable {
    let upstream: any UpstreamForwarding
    let logger: Logger

    /// Policies and handler for a matched request, and the headers policies asked for on the
    /// answer (`RateLimit-*`).
    func handle(_ state: RequestState, route index: Int, snapshot: Snapshot, groups: UpstreamGroupSet, runtime: PolicyRuntime) async -> ResponseState {
        let answer = await policiesAndHandler(state, route: index, snapshot: snapshot, groups: groups, runtime: runtime)
        return Self.withResponseHeaders(answer, state.responseHeaders)
    }

    /// Adds `extra` to the answer's headers. The `RateLimit-*` fields go as one group: the
    /// gateway's replace an upstream's, except on a 429, which keeps the limit that refused it.
    static func withResponseHeaders(_ answer: ResponseState, _ extra: HTTPFields) -> ResponseState {
        guard !extra.isEmpty else { return answer }
        var headers = answer.headers
        let answerHasLimit = headers[.rateLimitLimit] != nil
        let replaceLimit = extra[.rateLimitLimit] != nil && answer.status != .tooManyRequests
        if replaceLimit { for name in HTTPField.Name.rateLimitFields { headers[name] = nil } }
        for field in extra {
            let isLimit = HTTPField.Name.rateLimitFields.contains(field.name)
            if isLimit && answerHasLimit && !replaceLimit { continue }
            if !isLimit && headers[field.name] != nil { continue }
            headers.append(field)
        }
        return ResponseState(status: answer.status, headers: headers, body: answer.body)
    }

    private func policiesAndHandler(_ state: RequestState, route index: Int, snapshot: Snapshot, groups: UpstreamGroupSet, runtime: PolicyRuntime) async -> ResponseState {
        if case .respond(let response) = await snapshot.runInbound(route: index, state: state, runtime: runtime) {
            return response
        }
        var response: ResponseState
        do {
            response = try await runHandler(state, route: index, snapshot: snapshot, groups: groups, runtime: runtime)
        } catch {
            if error.status == .internalServerError {
                logger.error("handler failed: \(error.detail ?? error.title)", metadata: ["request-id": .string(state.requestId), "route": .string(state.route.label)])
            }
            return .problem(error, path: state.path, requestId: state.requestId)
        }
        if snapshot.hasOutboundPolicies(route: index) {
            response = await snapshot.runOutbound(route: index, response: response, state: state, runtime: runtime)
        }
        return response
    }

    private func runHandler(
        _ state: RequestState, route index: Int, snapshot: Snapshot, groups: UpstreamGroupSet, runtime: PolicyRuntime
    ) async throws(Problem) -> ResponseState {
        switch state.route.handler {
        case .staticResponse(let status, let headers, let body):
            var fields = HTTPFields()
            for (name, value) in headers { if let n = HTTPField.Name(name) { fields.append(HTTPField(name: n, value: value)) } }
            return ResponseState(status: HTTPResponse.Status(code: status), headers: fields, body: .text(body))
        case .lua:
            return await snapshot.runLuaHandler(route: index, state: state, runtime: runtime)
        case .urlForward(let baseUrl, let forwardSearch, let preserveHost):
            let url = baseUrl + state.path
            // The path is normalised (or a policy's checked value), the base is the operator's:
            // a `..` can only come from the base, and is still never sent.
            if PathCoding.hasDotSegment(inURL: url) { throw RewritePattern.dotSegment }
            return try await forward(state, to: forwardSearch ? appendingQuery(url, state.query) : url, preserveHost: preserveHost)
        case .urlRewrite(let pattern, let forwardSearch, let preserveHost):
            let custom = await runtime.customValues(pattern.customNames, state: state)
            let inputs = RewriteInputs(
                custom: custom, params: state.params, query: state.query, headers: state.headers,
                environment: snapshot.config.environment, method: state.method, path: state.path,
                greedyParameter: state.route.template.greedyParameter,
                greedySegments: state.route.template.greedySegments(of: state.pathSegments))
            let url = try pattern.render(inputs)
            return try await forward(state, to: forwardSearch ? appendingQuery(url, state.query) : url, preserveHost: preserveHost)
        case .aggregate(let config):
            return try await aggregate(state, config: config, groups: groups, settings: snapshot.config.settings)
        case .upstreamGroup(let configured, let forwardSearch, let preserveHost):
            return try await forwardToGroup(state, configured: configured, forwardSearch: forwardSearch, preserveHost: preserveHost,
                                            snapshot: snapshot, groups: groups, runtime: runtime)
        }
    }

    /// The `upstream-group` handler: the group a policy named (`context.custom.upstream`), the
    /// route's, or the one the path-routing table gives with the path it gives.
    private func forwardToGroup(
        _ state: RequestState, configured: String?, forwardSearch: Bool, preserveHost: Bool, snapshot: Snapshot, groups: UpstreamGroupSet,
        runtime: PolicyRuntime
    ) async throws(Problem) -> ResponseState {
        var name = configured
        var path = state.path
        if configured == nil, let resolved = snapshot.config.upstreams.pathRoutes.resolve(path: state.path) {
            name = resolved.group
            path = resolved.path
            if let transform = resolved.pendingTransform {
                switch await snapshot.runPathTransform(module: transform.module, export: transform.export, path: path, state: state, runtime: runtime) {
                case .path(let transformed): path = PathJoin.join(transform.prefix, transformed)
                case .answer(let answer): return answer
                }
            }
        }
        // A policy's choice wins over the route's and the table's group (the path stays).
        let chosen = await runtime.customValues(["upstream"], state: state)["upstream"]
        if let chosen { name = chosen }
        guard let name else {
            throw Problem(status: .notFound, type: Problem.Kind.routeNotFound, detail: "No upstream route matches \(state.path).")
        }
        guard let group = groups[name] else {
            logger.error("a policy named an unknown upstream group", metadata: ["request-id": .string(state.requestId), "group": .string(name)])
            throw Problem(status: .internalServerError, type: Problem.Kind.configuration, detail: "The request names an upstream group that does not exist.")
        }
        // Seed 004: the query goes on byte for byte. The request path was checked by routing
        // (and a policy's by the setter); a path the table or a transform built is checked
        // here: a dot segment is never sent.
        if path != state.path, PathCoding.hasDotSegment(inURL: "http://h" + path) { throw RewritePattern.dotSegment }
        let hashKey = await hashKey(for: group, state: state, runtime: runtime)
        let (answer, sentBody) = try await upstream.forward(
            group: group, path: path, query: forwardSearch ? state.query : nil, method: state.method, headers: state.headers, body: state.body,
            client: ClientInfo(address: state.clientAddress, scheme: state.scheme, authority: state.authority),
            preserveHost: preserveHost, hashKey: hashKey, requestId: state.requestId, logger: logger)
        state.body = sentBody
        return ResponseState(status: answer.status, headers: answer.headers, body: answer.body)
    }

    /// The `aggregate` handler: the declared calls (their `${params.*}`, `${query.*}` and
    /// `${headers.*}` arguments filled in) or those of the request body, run in parallel and
    /// merged; `X-Gatehouse-Partial: true` when an optional call failed.
    private func aggregate(_ state: RequestState, config: AggregateConfig, groups: UpstreamGroupSet, settings: GatewaySettings) async throws(Problem) -> ResponseState {
        let aggregator = Aggregator(config: config, groups: groups, upstream: upstream, logger: logger)
        let calls: [AggregateCall]
        if let declared = config.calls {
            calls = declared.map { call in
                var call = call
                call.args = call.args.map { Self.requestValue($0, state: state) }
                return call
            }
        } else {
            let bytes: [UInt8]
            do {
                switch state.body {
                case .empty: bytes = []
                case .buffered(let buffer): bytes = Array(buffer.readableBytesView)
                case .stream(let stream): bytes = Array(try await stream.collect(limit: settings.maxBufferedBodyBytes).readableBytesView)
                }
            } catch is BodyTooLarge {
                throw Problem(status: .contentTooLarge, type: Problem.Kind.payloadTooLarge, detail: "The request body exceeds the limit of \(settings.maxBufferedBodyBytes) bytes.")
            } catch {
                throw Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: "The request body could not be read.")
            }
            calls = try aggregator.calls(fromBody: bytes)
        }
        let answer = try await aggregator.run(
            calls, headers: state.headers, client: ClientInfo(address: state.clientAddress, scheme: state.scheme, authority: state.authority),
            requestId: state.requestId)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if answer.partial { headers[.gatehousePartial] = "true" }
        return ResponseState(status: .ok, headers: headers, body: .buffered(ByteBuffer(bytes: answer.body)))
    }

    /// A declared call's argument: a string `"${params.x}"`, `"${query.x}"`, `"${headers.x}"`
    /// (at any depth of arrays and objects) is that request value (null when absent).
    static func requestValue(_ value: JSONValue, state: RequestState) -> JSONValue {
        switch value {
        case .array(let items): return .array(items.map { requestValue($0, state: state) })
        case .object(let members): return .object(members.mapValues { requestValue($0, state: state) })
        default: break
        }
        guard case .string(let s) = value, s.hasPrefix("${"), s.hasSuffix("}") else { return value }
        let reference = s.dropFirst(2).dropLast()
        func suffix(_ prefix: String) -> String? { reference.hasPrefix(prefix) ? String(reference.dropFirst(prefix.count)) : nil }
        if let name = suffix("params.") {
            return state.params.first { $0.name == name }.map { .string($0.value) } ?? .null
        }
        if let name = suffix("query.") {
            return PathCoding.queryItems((state.query ?? "")[...]).first { $0.name == name }.map { .string($0.value) } ?? .null
        }
        if let name = suffix("headers."), let field = HTTPField.Name(name) {
            return state.headers[field].map { .string($0) } ?? .null
        }
        return value
    }

    /// What a consistent-hash group hashes for this request (nil: round robin for it).
    private func hashKey(for group: UpstreamGroup, state: RequestState, runtime: PolicyRuntime) async -> String? {
        guard case .consistentHash(let key) = group.config.loadBalancing else { return nil }
        switch key {
        case .header(let name): return state.headers[name]
        case .consumer: return state.user?["sub"]?.stringValue
        case .clientAddress: return state.clientAddress
        case .custom(let name): return await runtime.customValues([name], state: state)[name]
        }
    }

    /// Sends the (possibly policy-modified) request upstream by the proxy rules
    /// (`UpstreamForwarding.forward`: proxy headers, small bodies read first, one safe retry).
    private func forward(_ state: RequestState, to url: String, preserveHost: Bool) async throws(Problem) -> ResponseState {
        let (answer, sentBody) = try await upstream.forward(
            url: url, method: state.method, headers: state.headers, body: state.body,
            client: ClientInfo(address: state.clientAddress, scheme: state.scheme, authority: state.authority),
            preserveHost: preserveHost, requestId: state.requestId, logger: logger)
        state.body = sentBody
        return ResponseState(status: answer.status, headers: answer.headers, body: answer.body)
    }
}

extension HTTPField.Name {
    /// On an `aggregate` answer where an optional call failed.
    static let gatehousePartial = HTTPField.Name("X-Gatehouse-Partial")!
}
