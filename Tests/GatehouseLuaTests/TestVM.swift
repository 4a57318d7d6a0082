import GatehouseLua

extension LuaVM {
    /// One resume as a whole invocation of its own (tests that do not span several resumes).
    func resume(_ co: LuaCoroutine, arguments: Int32) -> ResumeOutcome {
        resume(co, arguments: arguments, invocation: LuaInvocation(budget: budget))
    }

    /// A VM whose global `wait` is a host function that yields, and a coroutine ready to run the
    /// function `source` returns.
    static func yielding(_ source: String, chunkName: String) throws -> (LuaVM, LuaCoroutine) {
        let vm = try LuaVM()
        let id = vm.register { _ in .yield }
        vm.main.pushHostFunction(id)
        vm.setGlobal("wait")
        try vm.load(source, chunkName: chunkName)
        try vm.protectedCall(arguments: 0, results: 1)
        let co = vm.acquireCoroutine()
        vm.main.move(1, to: co.state)
        return (vm, co)
    }
}
