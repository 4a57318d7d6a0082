import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
import Logging

/// What happens to a matched request: inbound policies, the handler, outbound policies.
/// Shared by the server and `gatehouse test` (which passes a stub upstream).
struct RequestPipeline: Sendable {
    let upstream: any UpstreamForwarding
    let logger: Logger

    /// Policies and handler for a matched request.
    func handle(_ state: RequestState, route index: Int, snapshot: Snapshot, runtime: PolicyRuntime) async -> ResponseState {
        if case .respond(let response) = await snapshot.runInbound(route: index, state: state, runtime: runtime) {
            return response
        }
        var response: ResponseState
        do {
            response = try await runHandler(state, route: index, snapshot: snapshot, runtime: runtime)
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

    private func runHandler(_ state: RequestState, route index: Int, snapshot: Snapshot, runtime: PolicyRuntime) async throws(Problem) -> ResponseState {
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
        }
    }

    /// Sends the (possibly policy-modified) request upstream with proxy headers added.
    private func forward(_ state: RequestState, to url: String, preserveHost: Bool) async throws(Problem) -> ResponseState {
        var headers = state.headers
        if let client = state.clientAddress {
            let prior = headers[values: .xForwardedFor].joined(separator: ", ")
            headers[.xForwardedFor] = prior.isEmpty ? client : prior + ", " + client
        }
        headers[.xForwardedProto] = state.scheme
        if let authority = state.authority {
            headers[.xForwardedHost] = authority
            if preserveHost && headers[.host] == nil { headers[.host] = authority }
        }
        let body = try await Self.bufferedIfSmall(state.body)
        state.body = body
        let outgoing = UpstreamClient.Request(url: url, method: state.method, headers: headers, body: body)
        let answer: UpstreamClient.Response
        do {
            answer = try await upstream.send(outgoing, logger: logger)
        } catch {
            // Nothing has reached the client yet. Retry once when that is safe: an idempotent
            // method, a body that can be sent again, and a failure before the upstream answered
            // (not a timeout, where the upstream may have acted on the request).
            guard Self.idempotent.contains(state.method), Self.replayable(body), error.type == Problem.Kind.upstreamUnavailable else {
                throw error
            }
            logger.info("retrying an idempotent request once after an upstream failure", metadata: ["request-id": .string(state.requestId)])
            answer = try await upstream.send(outgoing, logger: logger)
        }
        return ResponseState(status: answer.status, headers: answer.headers, body: answer.body)
    }

    /// Bodies declared at up to this size are read before the upstream request starts, as
    /// nginx does by default (`proxy_request_buffering`): the upstream gets head and body in
    /// one write, nothing of the client's pace reaches it, and such a request can be retried.
    /// Larger and chunked bodies stream.
    static let requestBufferLimit = 64 * 1024

    static func bufferedIfSmall(_ body: MessageBody) async throws(Problem) -> MessageBody {
        guard case .stream(let stream) = body, let length = stream.length, length <= requestBufferLimit else { return body }
        do {
            return .buffered(try await stream.collect(limit: length))
        } catch let error as BodyTooLarge {
            throw Problem(status: .contentTooLarge, type: Problem.Kind.payloadTooLarge, detail: "The request body exceeds the limit of \(error.limit) bytes.")
        } catch {
            throw Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: "The request body could not be read.")
        }
    }

    static let idempotent: Set<HTTPRequest.Method> = [.get, .head, .options, .put, .delete, .trace]

    static func replayable(_ body: MessageBody) -> Bool {
        if case .stream = body { return false }
        return true
    }
}
