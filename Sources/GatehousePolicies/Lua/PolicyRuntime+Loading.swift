import GatehouseCore
import GatehouseLua
import Logging
import NIOCore

/// Loading a generation into a VM: the prelude, the host API, and every Lua policy and handler.
extension PolicyRuntime {
    // MARK: Setup

    /// Runs the prelude's chunks (Lua/prelude, in the order of its ORDER file, embedded at build
    /// time by the EmbedLua plugin): each is called as `chunk(host, internal)`, and Swift then
    /// takes the drivers and tables it needs from `internal`.
    func installPrelude() throws(PolicyLoadError) {
        let L = vm.main
        let base = L.top
        defer { L.setTop(base) }
        // `host`: every host function by name, and json_null; the same table goes to every chunk.
        L.newTable()
        for (name, function) in hostAPI() {
            L.pushHostFunction(vm.register(function))
            L.rawSet(-2, field: name)
        }
        L.push(lightUserdata: LuaState.jsonNull)
        L.rawSet(-2, field: "json_null")
        let hostTable = L.top
        // `internal`: what chunks pass to later chunks, and what Swift reads once all have run.
        L.newTable()
        let internalTable = L.top
        for chunk in PreludeSources.chunks {
            do {
                try vm.load(chunk.source, chunkName: chunk.name)
            } catch {
                throw PolicyLoadError(message: "internal: the prelude chunk \(chunk.name) does not compile: \(error.message)")
            }
            L.pushValue(at: hostTable)
            L.pushValue(at: internalTable)
            do {
                try vm.protectedCall(arguments: 2, results: 0)
            } catch {
                throw PolicyLoadError(message: "internal: the prelude chunk \(chunk.name) failed: \(error.message)")
            }
        }
        func take(_ field: String, _ type: LuaType) throws(PolicyLoadError) -> Int32 {
            guard L.rawGet(internalTable, field: field) == type else {
                throw PolicyLoadError(message: "internal: the prelude did not set internal.\(field) to a \(type)")
            }
            return L.ref()
        }
        objectsRef = try take("objects", .table)
        liveRef = try take("live", .table)
        runInboundRef = try take("run_inbound", .function)
        runOutboundRef = try take("run_outbound", .function)
        runHandlerRef = try take("run_handler", .function)
        runLoaderRef = try take("run_loader", .function)
        runKeyFunctionRef = try take("run_keyfn", .function)
        // Policies load from modules' real tables; plugin code gets read-only views via `require`.
        requireRef = try take("require_raw", .function)
    }

    /// All host functions, one file per Lua namespace (see `*API.swift`).
    func hostAPI() -> [(String, HostFunction)] {
        requestAPI() + headersAPI() + responseAPI() + contextAPI() + jsonAPI() + envAPI() + moduleAPI()
            + httpAPI() + cacheAPI() + loaderAPI() + upstreamsAPI() + rateLimitAPI()
    }

    func loadPolicies(_ config: GatewayConfig) throws(PolicyLoadError) {
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
            if policy.instructionBudget != nil || policy.timeBudgetMilliseconds != nil || policy.wallClockBudgetMilliseconds != nil {
                compiled.budget = LuaBudget(
                    instructions: policy.instructionBudget ?? config.settings.luaInstructionBudget,
                    timeNanoseconds: UInt64(policy.timeBudgetMilliseconds ?? config.settings.luaTimeBudgetMilliseconds) * 1_000_000,
                    wallNanoseconds: UInt64(policy.wallClockBudgetMilliseconds ?? config.settings.luaWallClockBudgetMilliseconds) * 1_000_000)
            }
            policies[policy.name] = compiled
        }
        for (index, route) in config.routes.enumerated() {
            guard case .lua(let module, let export, let options) = route.handler else { continue }
            let (ref, _) = try loadFunction(module: module, export: export, fallback: "handler", owner: "the handler of \(route.label)", location: route.location)
            handlers[index] = Compiled(functionRef: ref, optionsRef: optionsRef(options))
        }
        for policy in config.policies.values.sorted(by: { $0.name < $1.name }) where policy.policyType == "rate-limit-inbound" {
            guard let (module, export) = RateLimitInbound.keyFunction(policy.options) else { continue }
            let (ref, _) = try loadFunction(module: module, export: export, fallback: "rateLimitKey", owner: "policy '\(policy.name)' (its identifier)", location: policy.location)
            keyFunctions[policy.name] = ref
        }
        let upstreamsFile = ConfigError(file: config.upstreams.file, message: "")
        for (module, export) in config.upstreams.pathRoutes.luaTransforms {
            let (ref, _) = try loadFunction(module: module, export: export, fallback: "transform", owner: "transformPath \(module)", location: upstreamsFile)
            transformFunctions[module.name + "#" + export] = ref
        }
    }

    func optionsRef(_ options: JSONValue) -> Int32 {
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
    func loadFunction(module: ModuleReference, export: String, fallback: String, owner: String, location: ConfigError) throws(PolicyLoadError) -> (Int32, JSONValue?) {
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

}
