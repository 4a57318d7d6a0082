public import GatehouseCore
import GatehouseLua
import Logging
import NIOCore

/// Running policies, handlers and loaders as coroutines: start, yield for I/O, resume, and
/// turning what Lua returned into an outcome. One ``LuaInvocation`` budget per invocation.
extension PolicyRuntime {
    // MARK: Invocations

    /// What a Lua invocation decided.
    public enum Outcome: Sendable {
        /// Inbound: the request goes on. Outbound/handler: never.
        case proceed
        /// Answer with this response (an index into `state.responses`).
        case respond(ResponseState)
        /// A loader's load function returned this value.
        case value(JSONValue)
        case failed(PolicyFailure)
    }

    /// The kinds of Lua entry points.
    enum Entry {
        case inbound(policy: String)
        case outbound(policy: String, response: Int)
        case handler(route: Int)
        case loader(name: String, key: String)
        /// A `transformPath` function of upstreams.json, by "module#export".
        case transform(key: String, path: String)
        /// The key function of a `rate-limit-inbound` policy with `rateLimitBy: "function"`.
        case rateLimitKey(policy: String)
    }

    /// What the prelude's drivers return first, named as `internal.RESULT` names them in
    /// Lua/prelude/core.lua; a positive value k means "answer with response k".
    enum ResultCode {
        static let proceed: Int64 = 0       // RESULT.CONTINUE
        static let invalid: Int64 = -1      // RESULT.INVALID: the function returned something else
        static let loadFailed: Int64 = -2   // RESULT.LOAD_FAILED: a load function returned nil, err
    }

    enum Step: @unchecked Sendable {
        case done(Outcome)
        case waiting(PendingOperation, LuaCoroutine)
    }

    /// Runs an inbound policy: `fn(request, context, options, policyName)`.
    public func runInbound(policy: String, state: RequestState) async -> Outcome {
        await run(.inbound(policy: policy), state: state)
    }

    /// Runs an outbound policy on `response` (already in `state.responses`).
    public func runOutbound(policy: String, response: ResponseState, state: RequestState) async -> Outcome {
        let index: Int
        if let i = state.responses.firstIndex(where: { $0 === response }) {
            index = i + 1
        } else {
            index = state.addResponse(response)
        }
        return await run(.outbound(policy: policy, response: index), state: state)
    }

    /// Runs the Lua handler of route `index`: `fn(request, context, options)`.
    public func runHandler(route index: Int, state: RequestState) async -> Outcome {
        await run(.handler(route: index), state: state)
    }

    /// Runs a `transformPath` function on `path`: `.value(.string(newPath))` or a failure.
    public func runPathTransform(module: ModuleReference, export: String, path: String, state: RequestState) async -> Outcome {
        let outcome = await run(.transform(key: module.name + "#" + export, path: path), state: state)
        if case .value(let value) = outcome, value.stringValue == nil {
            return .failed(PolicyFailure(policy: "transformPath \(module)", message: "transformPath must return the new path as a string"))
        }
        return outcome
    }

    /// Runs the key function of rate-limit policy `policy`: `.value` of what it returned
    /// (`.null` for nil), or a failure.
    public func runRateLimitKey(policy: String, state: RequestState) async -> Outcome {
        await run(.rateLimitKey(policy: policy), state: state)
    }

    func run(_ entry: Entry, state: RequestState) async -> Outcome {
        // One budget for the whole invocation, however often it waits for I/O.
        let invocation = LuaInvocation(budget: budget(for: entry))
        var step = await onLoop { self.start(entry, state: state, invocation: invocation) }
        while case .waiting(let operation, let co) = step {
            // A wait still running at the wall-clock deadline is abandoned; the resume below then
            // fails without running more Lua code.
            let remaining = invocation.wallNanosecondsLeft.map { Duration.nanoseconds(Int64(clamping: $0)) + .milliseconds(1) }
            let results = await perform(operation, state: state, within: remaining)
            step = await onLoop { self.continueRun(co, entry: entry, state: state, results: results, invocation: invocation) }
        }
        guard case .done(let outcome) = step else { fatalError("unreachable") }
        return outcome
    }

    /// The budget of `entry`: the policy's own override, or the gateway's (`vm.budget`, from
    /// gatehouse.json).
    func budget(for entry: Entry) -> LuaBudget {
        switch entry {
        case .inbound(let name), .outbound(let name, _): policies[name]?.budget ?? vm.budget
        case .handler, .loader, .transform, .rateLimitKey: vm.budget
        }
    }

    func start(_ entry: Entry, state: RequestState, invocation: LuaInvocation) -> Step {
        let rid = handle(for: state)
        let compiled: Compiled
        let driver: Int32
        let name: String
        switch entry {
        case .inbound(let policy), .outbound(let policy, _):
            guard let c = policies[policy] else { return .done(.failed(PolicyFailure(policy: policy, message: "policy '\(policy)' is not loaded"))) }
            compiled = c
            name = policy
            if case .inbound = entry { driver = runInboundRef } else { driver = runOutboundRef }
        case .handler(let route):
            guard let c = handlers[route] else { return .done(.failed(PolicyFailure(policy: "handler", message: "route handler is not loaded"))) }
            compiled = c
            name = "handler"
            driver = runHandlerRef
        case .loader(let loaderName, let key):
            guard let ref = loaderFunctions[loaderName] else {
                return .done(.failed(PolicyFailure(policy: "loader \(loaderName)", message: "loader '\(loaderName)' is not defined on this VM")))
            }
            return startValueFunction(ref, argument: key, rid: rid, name: "loader \(loaderName)", entry: entry, state: state, invocation: invocation)
        case .transform(let key, let path):
            guard let ref = transformFunctions[key] else {
                return .done(.failed(PolicyFailure(policy: "transformPath", message: "transformPath \(key) is not loaded on this VM")))
            }
            let name = "transformPath " + key.replacingOccurrences(of: "#", with: ":")
            return startValueFunction(ref, argument: path, rid: rid, name: name, entry: entry, state: state, invocation: invocation)
        case .rateLimitKey(let policy):
            guard let ref = keyFunctions[policy] else {
                return .done(.failed(PolicyFailure(policy: policy, message: "the key function of '\(policy)' is not loaded on this VM")))
            }
            return startValueFunction(ref, argument: policy, rid: rid, name: policy, entry: entry, state: state, invocation: invocation, driver: runKeyFunctionRef)
        }
        let co = vm.acquireCoroutine()
        let L = co.state
        L.ensureStack(8)
        L.pushRef(driver)
        L.pushRef(compiled.functionRef)
        L.push(rid)
        var arguments: Int32 = 2 // fn and rid; the driver itself is not an argument
        if case .outbound(_, let index) = entry {
            L.push(index)
            arguments += 1
        }
        L.pushRef(compiled.optionsRef)
        arguments += 1
        if case .handler = entry {} else {
            L.push(name)
            arguments += 1
        }
        state.currentPolicy = name
        return resume(co, arguments: arguments, entry: entry, state: state, invocation: invocation)
    }

    /// A function that returns a value, through `driver` (the loader's by default: `fn(argument)`
    /// → a value, or nil and a message; the key functions': `fn(request, context, argument)`).
    private func startValueFunction(
        _ ref: Int32, argument: String, rid: Int64, name: String, entry: Entry, state: RequestState, invocation: LuaInvocation, driver: Int32? = nil
    ) -> Step {
        let co = vm.acquireCoroutine()
        co.state.ensureStack(4)
        co.state.pushRef(driver ?? runLoaderRef)
        co.state.pushRef(ref)
        co.state.push(rid)
        co.state.push(argument)
        state.currentPolicy = name
        return resume(co, arguments: 3, entry: entry, state: state, invocation: invocation)
    }

    func continueRun(_ co: LuaCoroutine, entry: Entry, state: RequestState, results: PendingResult, invocation: LuaInvocation) -> Step {
        let L = co.state
        L.ensureStack(4)
        let count: Int32
        switch results {
        case .text(let text):
            L.push(text)
            count = 1
        case .failure(let message):
            L.pushNil()
            L.push(message)
            count = 2
        case .json(let value):
            L.push(json: value)
            count = 1
        case .values(let values):
            L.ensureStack(Int32(values.count) + 4)
            for value in values { L.push(json: value) }
            count = Int32(values.count)
        case .response(let index):
            L.push(state.rid)
            L.push(index)
            count = 2
        case .responses(let outcomes):
            L.newTable(arrayCapacity: Int32(outcomes.count))
            for (i, outcome) in outcomes.enumerated() {
                L.newTable(recordCapacity: 2)
                switch outcome {
                case .success(let index):
                    L.push(state.rid)
                    L.rawSet(-2, field: "rid")
                    L.push(index)
                    L.rawSet(-2, field: "index")
                case .failure(let failure):
                    L.push(failure.message)
                    L.rawSet(-2, field: "error")
                }
                L.rawSet(-2, index: Int64(i + 1))
            }
            count = 1
        }
        return resume(co, arguments: count, entry: entry, state: state, invocation: invocation)
    }

    func resume(_ co: LuaCoroutine, arguments: Int32, entry: Entry, state: RequestState, invocation: LuaInvocation) -> Step {
        current = state
        currentCoroutine = co.state
        let outcome = vm.resume(co, arguments: arguments, invocation: invocation)
        current = nil
        currentCoroutine = nil
        let policy = state.currentPolicy ?? "?"
        switch outcome {
        case .yielded:
            guard let operation = state.pending else {
                vm.releaseCoroutine(co)
                return .done(.failed(PolicyFailure(policy: policy, message: "coroutine.yield is not supported in policies (use coroutine.wrap inside your own code)")))
            }
            state.pending = nil
            return .waiting(operation, co)
        case .failed(let error):
            vm.releaseCoroutine(co)
            return .done(.failed(PolicyFailure(policy: policy, message: error.message, script: error)))
        case .finished(let count):
            let L = co.state
            let base = L.top - count + 1
            let code = count >= 1 ? L.toInteger(at: base) ?? ResultCode.invalid : ResultCode.invalid
            // What the function returned, for an error message: read only on the failure paths,
            // before the coroutine (whose stack holds it) is released.
            func returned() -> String { count >= 2 ? L.toString(at: base + 1) ?? "nil" : "nil" }
            switch entry {
            case .loader, .transform, .rateLimitKey: break
            default: return finishedPolicy(co, code: code, base: base, count: count, entry: entry, state: state, policy: policy)
            }
            // A load or transform function: a value, or LOAD_FAILED and a message.
            if code == ResultCode.loadFailed {
                let message = returned()
                vm.releaseCoroutine(co)
                return .done(.failed(PolicyFailure(policy: policy, message: message)))
            }
            let value = count >= 2 ? L.readJSON(at: base + 1) : .success(.null)
            vm.releaseCoroutine(co)
            switch value {
            case .success(let json): return .done(.value(json))
            case .failure(let error): return .done(.failed(PolicyFailure(policy: policy, message: "the function returned a value that is not JSON-compatible: \(error)")))
            }
        }
    }

    /// What a policy or handler returned, once it finished: go on, a response, or a failure
    /// saying what it should have returned.
    private func finishedPolicy(_ co: LuaCoroutine, code: Int64, base: Int32, count: Int32, entry: Entry, state: RequestState, policy: String) -> Step {
        let L = co.state
        func returned() -> String { count >= 2 ? L.toString(at: base + 1) ?? "nil" : "nil" }
        if code == ResultCode.proceed {
            vm.releaseCoroutine(co)
            return .done(.proceed)
        }
        if code > 0, Int(code) <= state.responses.count {
            vm.releaseCoroutine(co)
            return .done(.respond(state.responses[Int(code) - 1]))
        }
        let value = returned()
        vm.releaseCoroutine(co)
        let expected: String
        switch entry {
        case .inbound: expected = "an inbound policy must return the request (to continue) or a response (to answer now)"
        case .outbound: expected = "an outbound policy must return a response"
        case .handler: expected = "a handler must return a response"
        case .loader, .transform: expected = "a load function must return a value"
        case .rateLimitKey: expected = "a key function must return a table or nil"
        }
        return .done(.failed(PolicyFailure(policy: policy, message: "'\(policy)' returned \(value == "nil" ? "nothing" : "a \(value)"); \(expected)")))
    }

}
