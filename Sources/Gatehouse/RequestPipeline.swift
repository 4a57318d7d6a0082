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
