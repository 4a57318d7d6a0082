public import GatehouseCore
public import GatehouseLua
public import Logging
public import NIOCore
import Synchronization

/// Runtimes (VMs) alive in the process: lets tests prove that old generations are freed.
private let liveRuntimes = Atomic<Int>(0)

/// One Lua VM with the plugins of one configuration generation loaded, bound to one event loop.
///
/// Every method that touches the VM runs on `loop` (``onLoop(_:)`` hops there when needed), so
/// the Lua state is only ever used by that loop's thread.
public final class PolicyRuntime: @unchecked Sendable {
    public let vm: LuaVM
    public let loop: any EventLoop
    let sources: PluginSources
    let environment: ConfigEnvironment
    let logger: Logger
    let maxBufferedBodyBytes: Int
    /// Caches, loaders and the HTTP client behind `cache`, `loader` and `http`.
    public let services: RuntimeServices
    /// Load functions of the loaders this VM's modules created, by loader name.
    var loaderFunctions: [String: Int32] = [:]

    /// Requests that Lua has seen and that have not ended, by Lua handle.
    var requests: [Int64: RequestState] = [:]
    private var nextRid: Int64 = 1
    /// The request whose invocation is running right now (set only during a resume).
    var current: RequestState?
    var currentCoroutine: LuaState?

    // Registry references to the prelude's internals.
    var objectsRef: Int32 = 0
    private var liveRef: Int32 = 0
    private var runInboundRef: Int32 = 0
    private var runOutboundRef: Int32 = 0
    private var runHandlerRef: Int32 = 0
    private var runLoaderRef: Int32 = 0
    var requireRef: Int32 = 0

    /// A Lua function ready to be invoked, with its options table and budget.
    struct Compiled {
        let functionRef: Int32
        let optionsRef: Int32
        var budget: LuaBudget?
    }
    /// The budget from gatehouse.json, for invocations without an override.
    private var defaultBudget: LuaBudget = .default
    private var policies: [String: Compiled] = [:]
    private var handlers: [Int: Compiled] = [:]
    /// `name` and `version` declared by each loaded module (module name → values).
    public private(set) var moduleInfo: [String: (name: String?, version: String?)] = [:]

    /// Creates the VM on the calling thread (call it on `loop`), installs the policy API and
    /// loads every Lua policy and handler of `config`.
    public init(config: GatewayConfig, sources: PluginSources, loop: any EventLoop, logger: Logger, services: RuntimeServices) throws(PolicyLoadError) {
        self.services = services
        do {
            vm = try LuaVM(memoryLimit: config.settings.luaMemoryLimitBytes)
        } catch {
            throw PolicyLoadError(message: "cannot create a Lua VM")
        }
        vm.budget = LuaBudget(
            instructions: config.settings.luaInstructionBudget,
            timeNanoseconds: UInt64(config.settings.luaTimeBudgetMilliseconds) * 1_000_000)
        defaultBudget = vm.budget
        self.loop = loop
        self.sources = sources
        self.environment = config.environment
        self.logger = logger
        self.maxBufferedBodyBytes = config.settings.maxBufferedBodyBytes
        // Counted from here: if loading throws below, deinit still runs (self is initialized).
        liveRuntimes.add(1, ordering: .relaxed)
        try installPrelude()
        try loadPolicies(config)
    }

    deinit {
        liveRuntimes.subtract(1, ordering: .relaxed)
    }

    /// How many runtimes (Lua VMs with a generation loaded) exist in the process right now.
    public static var liveCount: Int { liveRuntimes.load(ordering: .relaxed) }

    // MARK: Setup

    private func installPrelude() throws(PolicyLoadError) {
        let L = vm.main
        do {
            try vm.load(Prelude.source, chunkName: Prelude.chunkName)
        } catch {
            throw PolicyLoadError(message: "internal: the prelude does not compile: \(error.message)")
        }
        L.newTable()
        for (name, function) in hostAPI() {
            L.pushHostFunction(vm.register(function))
            L.rawSet(-2, field: name)
        }
        L.push(lightUserdata: LuaState.jsonNull)
        L.rawSet(-2, field: "json_null")
        do {
            try vm.protectedCall(arguments: 1, results: 1)
        } catch {
            throw PolicyLoadError(message: "internal: the prelude failed: \(error.message)")
        }
        func take(_ field: String) -> Int32 {
            L.rawGet(-1, field: field)
            return L.ref()
        }
        objectsRef = take("objects")
        liveRef = take("live")
        runInboundRef = take("run_inbound")
        runOutboundRef = take("run_outbound")
        runHandlerRef = take("run_handler")
        runLoaderRef = take("run_loader")
        // Policies load from modules' real tables; plugin code gets read-only views via `require`.
        requireRef = take("require_raw")
        L.pop()
    }

    /// All host functions, one file per Lua namespace (see `*API.swift`).
    private func hostAPI() -> [(String, HostFunction)] {
        requestAPI() + headersAPI() + responseAPI() + contextAPI() + jsonAPI() + envAPI() + moduleAPI()
            + httpAPI() + cacheAPI() + loaderAPI()
    }

    private func loadPolicies(_ config: GatewayConfig) throws(PolicyLoadError) {
        for policy in config.policies.values.sorted(by: { $0.name < $1.name }) where policy.isLua {
            guard let module = policy.module else { continue }
            let export = policy.export ?? "default"
            let direction = policy.policyType == "custom-code-inbound" ? "inbound" : "outbound"
            let owner = "policy '\(policy.name)'"
            let (ref, schema) = try loadFunction(module: module, export: export, fallback: direction, owner: owner, location: policy.location)
            var options = policy.options
            if let schema {
                switch OptionsSchema.apply(schema, to: options) {
                case .success(let effective): options = effective
                case .failure(let problems):
                    throw PolicyLoadError(message: "\(owner): " + problems.lines.joined(separator: "; "), config: policy.location)
                }
            }
            var compiled = Compiled(functionRef: ref, optionsRef: optionsRef(options))
            if policy.instructionBudget != nil || policy.timeBudgetMilliseconds != nil {
                compiled.budget = LuaBudget(
                    instructions: policy.instructionBudget ?? config.settings.luaInstructionBudget,
                    timeNanoseconds: UInt64(policy.timeBudgetMilliseconds ?? config.settings.luaTimeBudgetMilliseconds) * 1_000_000)
            }
            policies[policy.name] = compiled
        }
        for (index, route) in config.routes.enumerated() {
            guard case .lua(let module, let export, let options) = route.handler else { continue }
            let (ref, _) = try loadFunction(module: module, export: export, fallback: "handler", owner: "the handler of \(route.label)", location: route.location)
            handlers[index] = Compiled(functionRef: ref, optionsRef: optionsRef(options))
        }
    }

    private func optionsRef(_ options: JSONValue) -> Int32 {
        vm.main.push(json: options)
        if vm.main.type(at: -1) != .table {
            vm.main.pop()
            vm.main.newTable()
        }
        return vm.main.ref()
    }

    /// Requires `module` and picks `export` from it: the module's function itself for
    /// "default", else a field of the table it returned (`fallback` is tried for "default").
    /// Also returns the module's `options` schema, if it declares one.
    private func loadFunction(module: ModuleReference, export: String, fallback: String, owner: String, location: ConfigError) throws(PolicyLoadError) -> (Int32, JSONValue?) {
        let L = vm.main
        guard let file = sources.resolve(module.name) else {
            throw PolicyLoadError(message: "\(owner): module \(module) not found in \(sources.directories.joined(separator: ", "))", config: location)
        }
        L.pushRef(requireRef)
        L.push(module.name)
        do {
            try vm.protectedCall(arguments: 1, results: 1)
        } catch {
            throw PolicyLoadError(message: "\(owner): loading \(file.chunkName) failed: \(error.message)", script: error, config: location)
        }
        defer { L.pop() }
        switch L.type(at: -1) {
        case .function where export == "default":
            moduleInfo[module.name] = (nil, nil)
            L.pushValue(at: -1)
            return (L.ref(), nil)
        case .table:
            func field(_ name: String) -> String? {
                L.rawGet(-1, field: name)
                defer { L.pop() }
                return L.toString(at: -1)
            }
            moduleInfo[module.name] = (field("name"), field("version"))
            var schema: JSONValue?
            if L.rawGet(-1, field: "options") == .table {
                switch L.readJSON(at: -1) {
                case .success(let value): schema = value
                case .failure(let error):
                    L.pop()
                    throw PolicyLoadError(message: "\(owner): the options schema of \(file.chunkName) is not valid: \(error)", config: location)
                }
            }
            L.pop()
            for name in export == "default" ? ["default", fallback] : [export] {
                if L.rawGet(-1, field: name) == .function { return (L.ref(), schema) }
                L.pop()
            }
            throw PolicyLoadError(message: "\(owner): \(file.chunkName) has no function '\(export == "default" ? "default" : export)'\(export == "default" ? " or '\(fallback)'" : "") in the table it returns", config: location)
        default:
            throw PolicyLoadError(message: "\(owner): \(file.chunkName) must return a function or a table of functions, not a \(L.typeName(at: -1))", config: location)
        }
    }

    // MARK: Running on the loop

    /// Runs `body` on this runtime's event loop (inline when already there).
    public func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        if loop.inEventLoop { return body() }
        return await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }

    /// The Lua handle of `state`, registering it on first use.
    private func handle(for state: RequestState) -> Int64 {
        if state.rid == 0 {
            state.rid = nextRid
            nextRid += 1
            requests[state.rid] = state
        }
        return state.rid
    }

    /// Ends the request's life in Lua: its objects become dead handles and are released.
    public func finish(_ state: RequestState) async {
        guard state.rid != 0 else { return }
        await onLoop { self.release(state) }
    }

    private func release(_ state: RequestState) {
        let rid = state.rid
        guard rid != 0, requests.removeValue(forKey: rid) != nil else { return }
        let L = vm.main
        func forget(in table: Int32) {
            L.pushRef(table)
            L.push(rid)
            L.pushNil()
            L.rawSet(-3)
            L.pop()
        }
        forget(in: liveRef)
        forget(in: objectsRef)
    }

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
    }

    private enum Step: @unchecked Sendable {
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

    private func run(_ entry: Entry, state: RequestState) async -> Outcome {
        var step = await onLoop { self.start(entry, state: state) }
        while case .waiting(let operation, let co) = step {
            let results = await perform(operation, state: state)
            step = await onLoop { self.continueRun(co, entry: entry, state: state, results: results) }
        }
        guard case .done(let outcome) = step else { fatalError("unreachable") }
        return outcome
    }

    private func start(_ entry: Entry, state: RequestState) -> Step {
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
            let co = vm.acquireCoroutine()
            co.state.ensureStack(4)
            co.state.pushRef(runLoaderRef)
            co.state.pushRef(ref)
            co.state.push(rid)
            co.state.push(key)
            state.currentPolicy = "loader \(loaderName)"
            return resume(co, arguments: 3, entry: entry, state: state)
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
        return resume(co, arguments: arguments, entry: entry, state: state)
    }

    private func continueRun(_ co: LuaCoroutine, entry: Entry, state: RequestState, results: PendingResult) -> Step {
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
        return resume(co, arguments: count, entry: entry, state: state)
    }

    private func resume(_ co: LuaCoroutine, arguments: Int32, entry: Entry, state: RequestState) -> Step {
        current = state
        currentCoroutine = co.state
        // Invocations interleave at yields: arm this entry's own budget for every resume.
        if case .inbound(let name) = entry, let budget = policies[name]?.budget {
            vm.budget = budget
        } else if case .outbound(let name, _) = entry, let budget = policies[name]?.budget {
            vm.budget = budget
        } else {
            vm.budget = defaultBudget
        }
        let outcome = vm.resume(co, arguments: arguments)
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
            let code = count >= 1 ? L.toInteger(at: base) ?? -1 : -1
            // What the function returned, for an error message: read only on the failure paths,
            // before the coroutine (whose stack holds it) is released.
            func returned() -> String { count >= 2 ? L.toString(at: base + 1) ?? "nil" : "nil" }
            if case .loader = entry {
                if code == -2 {
                    let message = returned()
                    vm.releaseCoroutine(co)
                    return .done(.failed(PolicyFailure(policy: policy, message: message)))
                }
                let value = count >= 2 ? L.readJSON(at: base + 1) : .success(.null)
                vm.releaseCoroutine(co)
                switch value {
                case .success(let json): return .done(.value(json))
                case .failure(let error): return .done(.failed(PolicyFailure(policy: policy, message: "the load function returned a value that is not JSON-compatible: \(error)")))
                }
            }
            if code == 0 {
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
            case .loader: expected = "a load function must return a value"
            }
            return .done(.failed(PolicyFailure(policy: policy, message: "'\(policy)' returned \(value == "nil" ? "nothing" : "a \(value)"); \(expected)")))
        }
    }

    // MARK: Asynchronous operations requested by host functions

    enum PendingResult: Sendable {
        case text(String)
        case failure(String)
        case json(JSONValue)
        /// A response added to the request (pushed as rid, index).
        case response(Int)
        case responses([Result<Int, FetchFailure>])
    }

    private func perform(_ operation: PendingOperation, state: RequestState) async -> PendingResult {
        switch operation {
        case .fetch(let request):
            return await fetch(request, state: state)
        case .fetchAll(let requests):
            let outcomes = await withTaskGroup(of: (Int, Result<ResponseState, FetchFailure>).self) { group in
                for (i, request) in requests.enumerated() {
                    group.addTask { (i, await self.fetchResponse(request)) }
                }
                var collected = [Result<ResponseState, FetchFailure>](repeating: .failure(FetchFailure("not run")), count: requests.count)
                for await (i, result) in group { collected[i] = result }
                return collected
            }
            return .responses(outcomes.map { $0.map { state.addResponse($0) } })
        case .awaitLoad(let load):
            switch await load.value {
            case .success(let value): return .json(value)
            case .failure(let failure): return .failure(failure.message)
            }
        case .readBody(let index):
            let body = index == 0 ? state.body : state.responses[index - 1].body
            switch body {
            case .empty: return .text("")
            case .buffered(let buffer): return .text(String(buffer: buffer))
            case .stream(let stream):
                do {
                    let buffer = try await stream.collect(limit: maxBufferedBodyBytes)
                    if index == 0 { state.body = .buffered(buffer) } else { state.responses[index - 1].body = .buffered(buffer) }
                    return .text(String(buffer: buffer))
                } catch let error as BodyTooLarge {
                    if index == 0 {
                        state.forcedProblem = Problem(
                            status: .contentTooLarge, type: Problem.Kind.payloadTooLarge,
                            detail: "The request body exceeds the limit of \(error.limit) bytes.")
                    }
                    return .failure("body exceeds the limit of \(error.limit) bytes")
                } catch {
                    return .failure("the body could not be read: \(error)")
                }
            }
        }
    }

    private func fetchResponse(_ request: FetchRequest) async -> Result<ResponseState, FetchFailure> {
        guard let fetcher = services.fetcher else { return .failure(FetchFailure("http.fetch is not available in this process")) }
        return await fetcher.fetch(request, maxBodyBytes: max(maxBufferedBodyBytes, 8 << 20))
    }

    private func fetch(_ request: FetchRequest, state: RequestState) async -> PendingResult {
        switch await fetchResponse(request) {
        case .success(let response): return .response(state.addResponse(response))
        case .failure(let failure): return .failure(failure.message)
        }
    }

    // MARK: Background loads

    /// Runs loader `name`'s Lua load function for `key` on this VM, bounded by its timeout.
    func runLoad(_ name: String, key: String) async -> Result<JSONValue, FetchFailure> {
        let timeout = services.loaders.options(name)?.timeout ?? .seconds(10)
        let state = RequestState.background(label: "loader \(name)")
        // The load itself is not interrupted (Lua code runs to completion on its VM); a late
        // value is discarded.
        let outcome = await withTimeout(timeout) { () -> Result<JSONValue, FetchFailure> in
            switch await self.run(.loader(name: name, key: key), state: state) {
            case .value(let value): return .success(value)
            case .failed(let failure): return .failure(FetchFailure(failure.message))
            default: return .failure(FetchFailure("the load function returned nothing"))
            }
        } ?? .failure(FetchFailure("the load did not finish within \(timeout)"))
        await finish(state)
        if case .failure(let failure) = outcome {
            logger.warning("loader failed; the last good value (if any) keeps being served", metadata: [
                "loader": .string(name), "key": .string(key), "error": .string(failure.message),
            ])
        }
        services.loaders.finish(name, key, outcome)
        return outcome
    }

    // MARK: Reading Lua state for handlers

    /// Values of `context.custom[name]` for this request, as text (strings and numbers only).
    public func customValues(_ names: [String], state: RequestState) async -> [String: String] {
        guard state.rid != 0, !names.isEmpty else { return [:] }
        return await onLoop {
            let L = self.vm.main
            var out: [String: String] = [:]
            L.pushRef(self.objectsRef)
            L.push(state.rid)
            guard L.rawGet(-2) == .table, L.rawGet(-1, field: "custom") == .table else {
                L.setTop(0)
                return out
            }
            for name in names {
                L.rawGet(-1, field: name)
                switch L.type(at: -1) {
                case .string: out[name] = L.toString(at: -1)
                case .number: out[name] = L.isInteger(at: -1) ? String(L.toInteger(at: -1)!) : String(L.toNumber(at: -1)!)
                default: break
                }
                L.pop()
            }
            L.setTop(0)
            return out
        }
    }

    /// The request a host function was called for (argument 1 is its handle).
    func state(_ L: LuaState, at index: Int32 = 1) -> RequestState? {
        guard let rid = L.toInteger(at: index) else { return nil }
        return requests[rid]
    }

    /// The message (request 0, response k) a host function addresses.
    func message(_ L: LuaState) -> (RequestState, Int)? {
        guard let state = state(L), let index = L.toInteger(at: 2) else { return nil }
        guard index == 0 || (index > 0 && Int(index) <= state.responses.count) else { return nil }
        return (state, Int(index))
    }
}

/// A Lua policy or handler that failed: a script error, a budget, or a bad return value.
public struct PolicyFailure: Error, Sendable {
    public let policy: String
    public let message: String
    public let script: LuaScriptError?

    public init(policy: String, message: String, script: LuaScriptError? = nil) {
        self.policy = policy
        self.message = message
        self.script = script
    }
}

/// A plugin that cannot be loaded: where in the config it is used and where in the file it broke.
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let script: LuaScriptError?
    public let config: ConfigError?

    public init(message: String, script: LuaScriptError? = nil, config: ConfigError? = nil) {
        self.message = message
        self.script = script
        self.config = config
    }

    public var description: String {
        var out = ""
        if let config { out += config.file + (config.line.map { ":\($0)" } ?? "") + (config.pointer.isEmpty ? "" : " (\(config.pointer))") + ": " }
        return out + message
    }
}
