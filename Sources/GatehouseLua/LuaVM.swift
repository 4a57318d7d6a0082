import CGatehouseLua

/// One sandboxed Lua VM.
///
/// A VM belongs to one thread at a time: Gatehouse keeps one per event loop and only touches it
/// from that loop. It is `@unchecked Sendable` so it can be handed to its loop; callers uphold
/// the confinement (debug builds check it where the owner knows the loop).
public final class LuaVM: @unchecked Sendable {
    @usableFromInline let vm: OpaquePointer
    /// The main thread, used for loading chunks and as the resumer of coroutines.
    public let main: LuaState
    /// Host functions by ID. Written only while the VM is being set up.
    @usableFromInline var hostFunctions: ContiguousArray<HostFunction> = []
    /// Finished coroutines ready for reuse (a fresh thread per call costs several times more).
    var idleCoroutines: [LuaCoroutine] = []
    /// The budget of each ``protectedCall(arguments:results:)`` (module loads, tests).
    /// Invocations that resume carry their own ``LuaInvocation``.
    public var budget: LuaBudget = .default

    /// Creates a VM with the sandboxed standard libraries. `memoryLimit` caps what Lua code may
    /// allocate (0 = unlimited).
    public init(memoryLimit: Int = 0) throws(LuaVMError) {
        guard let vm = gh_vm_new(memoryLimit) else { throw .cannotCreate }
        self.vm = vm
        self.main = LuaState(gh_vm_main(vm))
        gh_vm_set_dispatch(vm, luaDispatch, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        gh_vm_close(vm)
    }

    /// Runs a full garbage collection cycle.
    public func collectGarbage() { gh_vm_collect(vm) }

    /// Registers a host function and returns its ID (push it with ``LuaState/pushHostFunction(_:)``).
    public func register(_ function: @escaping HostFunction) -> HostFunctionID {
        hostFunctions.append(function)
        return HostFunctionID(rawValue: Int32(hostFunctions.count - 1))
    }

    /// Pops the top of the main stack into global `name` (raw: no metamethods run).
    public func setGlobal(_ name: String) {
        main.pushRef(2) // LUA_RIDX_GLOBALS
        main.insert(at: -2)
        main.rawSet(-2, field: name)
        main.pop()
    }

    // MARK: Loading and calling

    /// Compiles text-only source. On success the function is on top of the main stack.
    /// `chunkName` is how errors name the file (e.g. "plugins/auth.lua").
    public func load(_ source: String, chunkName: String) throws(LuaScriptError) {
        var source = source
        let status = source.withUTF8 { bytes in
            gh_load(main.pointer, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self), bytes.count, "@" + chunkName)
        }
        if status != GH_OK {
            let message = main.toString(at: -1) ?? "cannot load \(chunkName)"
            main.pop()
            throw LuaScriptError(message: message)
        }
    }

    /// Calls the function below `arguments` values on the main stack, under the budget, leaving
    /// `results` values (or any number with -1) on the stack.
    public func protectedCall(arguments: Int32, results: Int32) throws(LuaScriptError) {
        let invocation = LuaInvocation(budget: budget)
        let status = gh_pcall(main.pointer, arguments, results, invocation.state)
        if status != GH_OK {
            let hit = invocation.exceeded
            let combined = main.toString(at: -1) ?? (status == GH_ERRMEM ? "not enough memory" : "error object is not a string")
            main.pop()
            throw LuaScriptError(combined: combined, budget: hit ?? (status == GH_ERRMEM ? .memory : nil))
        }
    }

    // MARK: Coroutines

    /// A coroutine ready to run a function: reused from the pool when possible.
    public func acquireCoroutine() -> LuaCoroutine {
        if let co = idleCoroutines.popLast() { return co }
        var ref: Int32 = 0
        let thread = gh_newthread(main.pointer, &ref)!
        return LuaCoroutine(state: LuaState(thread), ref: ref)
    }

    /// Returns a coroutine to the pool once its invocation is over (finished or failed).
    ///
    /// A coroutine that ended in an error, or is abandoned while suspended, is dropped, never
    /// reused and never closed: when the error was raised from the count hook (a budget), Lua
    /// leaves the thread's hooks disabled, so a reused thread would run the next policy without
    /// budgets, and closing it would run its pending `__close` handlers without any. The
    /// collector frees it. Errors are rare; a fresh thread costs a few hundred nanoseconds.
    public func releaseCoroutine(_ co: LuaCoroutine) {
        if co.failed || gh_status(co.state.pointer) != GH_OK {
            main.unref(co.ref)
            return
        }
        co.state.setTop(0)
        if idleCoroutines.count < 256 {
            idleCoroutines.append(co)
        } else {
            main.unref(co.ref)
        }
    }

    /// Starts or continues `co` with `arguments` values on its stack (for a start: the function
    /// and its arguments), under `invocation`'s budget: pass the same one to every resume of
    /// one invocation. A budget already exceeded (the wall clock ran out while it waited) fails
    /// at once without running Lua code.
    public func resume(_ co: LuaCoroutine, arguments: Int32, invocation: LuaInvocation) -> ResumeOutcome {
        var results: Int32 = 0
        let status = gh_resume(co.state.pointer, main.pointer, arguments, &results, invocation.state)
        switch status {
        case GH_OK:
            return .finished(results: results)
        case GH_YIELD:
            // Host functions yield with no values; discard anything a user-level yield passed.
            co.state.setTop(co.state.top - results)
            return .yielded
        default:
            co.failed = true
            let hit = invocation.exceeded
            let combined = co.state.toString(at: -1) ?? (status == GH_ERRMEM ? "not enough memory" : "error")
            return .failed(LuaScriptError(combined: combined, budget: hit ?? (status == GH_ERRMEM ? .memory : nil)))
        }
    }
}

/// Why a VM could not be created.
public enum LuaVMError: Error, Sendable {
    case cannotCreate
}

/// A Lua thread used to run one invocation at a time.
public final class LuaCoroutine: @unchecked Sendable {
    public let state: LuaState
    let ref: Int32
    var failed = false

    init(state: LuaState, ref: Int32) {
        self.state = state
        self.ref = ref
    }
}

/// How a resume ended.
public enum ResumeOutcome: Sendable {
    /// The function returned; `results` values are on the coroutine's stack.
    case finished(results: Int32)
    /// A host function yielded; resume with its results once its operation completes.
    case yielded
    /// An error (or a budget) ended the run.
    case failed(LuaScriptError)
}

/// The one C-callable entry point for every host function of every VM.
private func luaDispatch(_ thread: OpaquePointer?, _ id: Int32, _ context: UnsafeMutableRawPointer?) -> Int32 {
    let vm = Unmanaged<LuaVM>.fromOpaque(context!).takeUnretainedValue()
    let state = LuaState(thread!)
    let result = vm.hostFunctions.withUnsafeBufferPointer { $0[Int(id)] }(state)
    switch result {
    case .values(let n):
        return n
    case .yield:
        return GH_HOST_YIELD
    case .error(let message):
        state.push(message)
        return GH_HOST_ERROR
    }
}
