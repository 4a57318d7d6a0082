public import GatehouseCore
import GatehouseLua
import Logging

/// Runs a route's policies in order. A failing policy never escapes as an error: it becomes a
/// 500 problem (fail closed, the default) or a log line (fail open).
extension Snapshot {
    public enum InboundResult: Sendable {
        case proceed
        case respond(ResponseState)
    }

    /// Inbound policies, in the route's order, until one answers.
    public func runInbound(route: Int, state: RequestState, runtime: PolicyRuntime) async -> InboundResult {
        for step in inbound[route] {
            switch step {
            case .builtIn(let policy):
                state.currentPolicy = policy.name
                if let problem = await policy.authenticate(state) {
                    return .respond(.problem(problem, path: state.path, requestId: state.requestId))
                }
            case .setHeaders(let policy):
                state.currentPolicy = policy.name
                var fields = state.headers
                await policy.apply(to: &fields, state: state, runtime: runtime)
                state.headers = fields
            case .keyedRateLimit(let policy):
                state.currentPolicy = policy.name
                let selection: JSONValue
                switch await runtime.runRateLimitKey(policy: policy.name, state: state) {
                case .value(let value): selection = value
                case .failed(let failure): return .respond(failureResponse(failure, state: state))
                case .proceed, .respond:
                    return .respond(failureResponse(PolicyFailure(policy: policy.name, message: "the key function must return a table or nil"), state: state))
                }
                switch await policy.authenticate(state, selection: selection) {
                case .success(nil): continue
                case .success(let problem?): return .respond(.problem(problem, path: state.path, requestId: state.requestId))
                case .failure(let failure): return .respond(failureResponse(failure, state: state))
                }
            case .lua(let name, let failOpen):
                let outcome = await runtime.runInbound(policy: name, state: state)
                if let forced = state.forcedProblem {
                    return .respond(.problem(forced, path: state.path, requestId: state.requestId))
                }
                switch outcome {
                case .proceed, .value: continue
                case .respond(let response): return .respond(response)
                case .failed(let failure):
                    if failOpen {
                        logFailure(failure, state: state, failOpen: true)
                        continue
                    }
                    return .respond(failureResponse(failure, state: state))
                }
            }
        }
        return .proceed
    }

    /// Outbound policies, in order; each may replace the response.
    public func runOutbound(route: Int, response: ResponseState, state: RequestState, runtime: PolicyRuntime) async -> ResponseState {
        var current = response
        for step in outbound[route] {
            guard case .lua(let name, let failOpen) = step else {
                if case .setHeaders(let policy) = step {
                    state.currentPolicy = policy.name
                    var fields = current.headers
                    await policy.apply(to: &fields, state: state, runtime: runtime)
                    current.headers = fields
                }
                continue
            }
            switch await runtime.runOutbound(policy: name, response: current, state: state) {
            case .respond(let next): current = next
            case .proceed, .value: continue
            case .failed(let failure):
                if failOpen {
                    logFailure(failure, state: state, failOpen: true)
                    continue
                }
                return failureResponse(failure, state: state)
            }
        }
        return current
    }

    /// The Lua handler of a route.
    public func runLuaHandler(route: Int, state: RequestState, runtime: PolicyRuntime) async -> ResponseState {
        let outcome = await runtime.runHandler(route: route, state: state)
        if let forced = state.forcedProblem {
            return .problem(forced, path: state.path, requestId: state.requestId)
        }
        switch outcome {
        case .respond(let response): return response
        case .proceed, .value: return failureResponse(PolicyFailure(policy: "handler", message: "the handler returned no response"), state: state)
        case .failed(let failure): return failureResponse(failure, state: state)
        }
    }

    public enum PathTransformResult: Sendable {
        case path(String)
        /// The function failed: answer with this (a 500 problem).
        case answer(ResponseState)
    }

    /// Runs a Lua `transformPath` of upstreams.json on `path`: the new path, or the 500 answer
    /// when the function failed (logged like a policy failure) or did not return a path.
    public func runPathTransform(module: ModuleReference, export: String, path: String, state: RequestState, runtime: PolicyRuntime) async -> PathTransformResult {
        let name = "transformPath \(module)"
        switch await runtime.runPathTransform(module: module, export: export, path: path, state: state) {
        case .value(let value):
            let text = value.stringValue ?? ""
            // A path, nothing that would end it or start a query (the query is the client's).
            guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }) else {
                return .answer(failureResponse(PolicyFailure(policy: name, message: "transformPath returned '\(text)', which is not a path (no space, ?, # or non-ASCII)"), state: state))
            }
            return .path(text)
        case .failed(let failure):
            return .answer(failureResponse(failure, state: state))
        case .proceed, .respond:
            return .answer(failureResponse(PolicyFailure(policy: name, message: "transformPath must return the new path as a string"), state: state))
        }
    }

    /// Logs the failure with file, line and traceback, and builds the 500 problem the client
    /// sees (which names the policy and the request id, never the script's internals).
    func failureResponse(_ failure: PolicyFailure, state: RequestState) -> ResponseState {
        logFailure(failure, state: state, failOpen: false)
        let detail: String
        if let budget = failure.script?.budget {
            detail = "The policy '\(failure.policy)' exceeded its \(budget.rawValue) budget."
        } else {
            detail = "The policy '\(failure.policy)' failed while handling this request."
        }
        let problem = Problem(status: .internalServerError, type: Problem.Kind.policyError, detail: detail)
        return .problem(problem, path: state.path, requestId: state.requestId)
    }

    func logFailure(_ failure: PolicyFailure, state: RequestState, failOpen: Bool) {
        var metadata: Logger.Metadata = [
            "request-id": .string(state.requestId),
            "policy": .string(failure.policy),
            "route": .string(state.route.label),
        ]
        if let script = failure.script {
            if let file = script.file { metadata["file"] = .string(file) }
            if let line = script.line { metadata["line"] = .stringConvertible(line) }
            if let budget = script.budget { metadata["budget"] = .string(budget.rawValue) }
            if !script.traceback.isEmpty { metadata["traceback"] = .string(script.traceback) }
        }
        logger.error("policy failed\(failOpen ? " (failMode open: continuing)" : ""): \(failure.message)", metadata: metadata)
    }
}
