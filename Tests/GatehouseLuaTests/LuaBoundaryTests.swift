import GatehouseLua
import Testing

extension LuaVM {
    /// One resume as a whole invocation of its own (tests that do not span several resumes).
    func resume(_ co: LuaCoroutine, arguments: Int32) -> ResumeOutcome {
        resume(co, arguments: arguments, invocation: LuaInvocation(budget: budget))
    }
}

/// The rules of the Lua boundary (docs/architecture.md): errors and yields raised by C after the
/// Swift frame returned, so Swift cleanup always runs and the VM stays usable.
@Suite struct LuaBoundaryTests {
    final class Counter: @unchecked Sendable { var value = 0 }

    func run(_ vm: LuaVM, _ source: String, results: Int32 = 1) throws(LuaScriptError) {
        try vm.load(source, chunkName: "plugins/test.lua")
        try vm.protectedCall(arguments: 0, results: results)
    }

    @Test func hostFunctionErrorRunsSwiftDeferAndIsCatchableInLua() throws {
        let vm = try LuaVM()
        let cleanups = Counter()
        let id = vm.register { _ in
            defer { cleanups.value += 1 }
            return .error("refused by the host")
        }
        vm.main.pushHostFunction(id)
        vm.setGlobal("hostfail")
        try run(vm, "local ok, err = pcall(function() local r = hostfail() return r end)\nreturn err", results: 1)
        let message = vm.main.toString(at: -1) ?? ""
        vm.main.pop()
        #expect(cleanups.value == 1)
        #expect(message.contains("refused by the host"))
        #expect(message.contains("plugins/test.lua:1:"), "the trampoline adds the Lua caller's position")
        // Uncaught, the same error ends the protected call with file and line.
        #expect(throws: LuaScriptError.self) { try run(vm, "\n\nhostfail()") }
        #expect(cleanups.value == 2)
        do {
            try run(vm, "\n\nhostfail()")
        } catch {
            #expect(error.file == "plugins/test.lua")
            #expect(error.line == 3)
        }
        // The VM still works.
        try run(vm, "return 40 + 2")
        #expect(vm.main.toInteger(at: -1) == 42)
    }

    @Test func hostFunctionYieldSuspendsAndResumesWithValues() throws {
        let vm = try LuaVM()
        let id = vm.register { _ in .yield }
        vm.main.pushHostFunction(id)
        vm.setGlobal("wait")
        try vm.load("return function() local v = wait() return v * 2 end", chunkName: "plugins/y.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        let co = vm.acquireCoroutine()
        vm.main.move(1, to: co.state)
        guard case .yielded = vm.resume(co, arguments: 0) else { Issue.record("expected a yield"); return }
        co.state.push(21)
        guard case .finished(let n) = vm.resume(co, arguments: 1) else { Issue.record("expected completion"); return }
        #expect(n == 1)
        #expect(co.state.toInteger(at: -1) == 42)
        vm.releaseCoroutine(co)
    }

    @Test func yieldThroughACBoundaryIsACleanError() throws {
        let vm = try LuaVM()
        let id = vm.register { _ in .yield }
        vm.main.pushHostFunction(id)
        vm.setGlobal("wait")
        try vm.load("return function() table.sort({3, 1, 2}, function(a, b) wait() return a < b end) end", chunkName: "plugins/sort.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        let co = vm.acquireCoroutine()
        vm.main.move(1, to: co.state)
        guard case .failed(let error) = vm.resume(co, arguments: 0) else { Issue.record("expected an error"); return }
        #expect(error.message.contains("cannot wait for I/O here"))
        vm.releaseCoroutine(co)
        // The pooled coroutine was reset and runs the next function.
        try run(vm, "return function() return 7 end")
        let again = vm.acquireCoroutine()
        vm.main.move(1, to: again.state)
        guard case .finished = vm.resume(again, arguments: 0) else { Issue.record("reuse failed"); return }
        #expect(again.state.toInteger(at: -1) == 7)
    }

    @Test func instructionBudgetStopsARunawayLoopAndTheVMRecovers() throws {
        let vm = try LuaVM()
        vm.budget = LuaBudget(instructions: 1_000_000, timeNanoseconds: 0)
        do {
            try run(vm, "while true do end")
            Issue.record("the loop was not stopped")
        } catch {
            #expect(error.budget == .instructions)
        }
        try run(vm, "local s = 0 for i = 1, 1000 do s = s + i end return s")
        #expect(vm.main.toInteger(at: -1) == 500500)
    }

    /// Regression: a budget raised from the count hook left the coroutine's hooks disabled, and
    /// the pooled coroutine then ran the next policy with no budget at all.
    @Test func aCoroutineThatHitABudgetNeverRunsUnbudgetedCodeLater() throws {
        let vm = try LuaVM()
        vm.budget = LuaBudget(instructions: 2_000_000, timeNanoseconds: 2_000_000_000)
        // Finite (about 30M instructions): without working hooks it would simply finish.
        try vm.load("return function() local n = 0 for i = 1, 1e7 do n = n + i end return n end", chunkName: "plugins/spin.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        let spin = vm.main.ref()
        for round in 1...3 {
            let co = vm.acquireCoroutine()
            co.state.pushRef(spin)
            guard case .failed(let error) = vm.resume(co, arguments: 0) else {
                Issue.record("round \(round): the loop was not stopped")
                return
            }
            #expect(error.budget == .instructions, "round \(round)")
            vm.releaseCoroutine(co)
        }
    }

    @Test func pcallCannotSwallowABudget() throws {
        let vm = try LuaVM()
        vm.budget = LuaBudget(instructions: 0, timeNanoseconds: 50_000_000)
        do {
            try run(vm, "while true do pcall(function() while true do end end) end")
            Issue.record("pcall swallowed the budget")
        } catch {
            #expect(error.budget == .time)
        }
    }

    @Test func memoryCapStopsAMemoryBombAndTheVMRecovers() throws {
        let vm = try LuaVM(memoryLimit: 16 << 20)
        do {
            try run(vm, "local s = 'x' while true do s = s .. s end")
            Issue.record("the bomb was not stopped")
        } catch {
            #expect(error.budget == .memory)
        }
        vm.collectGarbage()
        try run(vm, "return #string.rep('a', 1000)")
        #expect(vm.main.toInteger(at: -1) == 1000)
    }

    @Test(arguments: [
        "return io", "return debug", "return dofile", "return loadfile", "return package",
        "return string.dump", "return ('').dump", "return os.execute", "return os.getenv", "return os.exit",
    ])
    func sandboxHidesDangerousFunctions(_ source: String) throws {
        let vm = try LuaVM()
        try run(vm, source)
        #expect(vm.main.type(at: -1) == .nil, "\(source) must be nil")
    }

    /// Calling `dump` as a method of a string (through the string metatable) finds nothing.
    @Test func stringDumpIsUnreachableAsAMethod() throws {
        let vm = try LuaVM()
        do {
            try run(vm, "return ('x'):dump()")
            Issue.record("('x'):dump() ran")
        } catch {
            #expect(error.message.contains("attempt to call a nil value (method 'dump')"), "\(error.message)")
        }
    }

    @Test func sandboxRefusesBinaryChunksFinalizersAndCollectorControl() throws {
        let vm = try LuaVM()
        try run(vm, "return select(2, load('\\27Lua'))")
        #expect(vm.main.toString(at: -1)?.contains("binary") == true)
        vm.main.pop()
        #expect(throws: LuaScriptError.self) { try run(vm, "setmetatable({}, {__gc = function() end})") }
        #expect(throws: LuaScriptError.self) { try run(vm, "collectgarbage('collect')") }
        try run(vm, "return collectgarbage('count') > 0")
        #expect(vm.main.toBool(at: -1))
        try run(vm, "return os.time() > 0 and os.clock() >= 0 and type(os.date()) == 'string'")
        #expect(vm.main.toBool(at: -1))
    }

    /// Hooks cannot interrupt Lua's C pattern matcher: costly patterns are refused before they run.
    @Test func catastrophicPatternsAreRefusedAndOrdinaryOnesWork() throws {
        let vm = try LuaVM()
        for call in ["string.find(string.rep('a', 300), '.-.-.-b')", "(string.rep('a', 300)):match('.*.*.*b')",
                     "string.gsub(string.rep('a', 100000), '.-x', '')"] {
            do {
                try run(vm, "return " + call)
                Issue.record("\(call) was allowed")
            } catch {
                #expect(error.message.contains("pattern too costly"), "\(error.message)")
            }
        }
        try run(vm, "return select('#', ('k=v&a=b&c=d'):gsub('([^&=]+)=([^&=]*)', '%1'))")
        try run(vm, "return (string.rep('ab', 50000)):find('abab', 1, true) ~= nil and (string.rep('x', 1000)):match('^(.-)$') ~= nil")
        #expect(vm.main.toBool(at: -1))
        try run(vm, "return ('%d'):format(7) == '7' and (('a.b'):find('.', 1, true)) == 2")
        #expect(vm.main.toBool(at: -1))
    }

    @Test func scriptErrorsCarryFileLineAndTraceback() throws {
        let vm = try LuaVM()
        do {
            try run(vm, "local function f()\n  local x = nil\n  return x.field\nend\nreturn f()")
            Issue.record("expected an error")
        } catch {
            #expect(error.file == "plugins/test.lua")
            #expect(error.line == 3)
            #expect(error.traceback.contains("plugins/test.lua"))
        }
        do {
            try vm.load("return +", chunkName: "plugins/broken.lua")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.file == "plugins/broken.lua")
            #expect(error.line == 1)
        }
    }
}

/// The cost of the mechanism every non-blocking call uses: a host function yields, Swift
/// resumes. Printed for docs/lua-api.md, never asserted (speed is measured, not unit-tested).
@Suite struct YieldCostMeasurement {
    @Test func yieldResumeRoundTrip() throws {
        let vm = try LuaVM()
        let id = vm.register { _ in .yield }
        vm.main.pushHostFunction(id)
        vm.setGlobal("wait")
        try vm.load("return function(n) local s = 0 for i = 1, n do s = s + wait() end return s end", chunkName: "plugins/yield.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        let co = vm.acquireCoroutine()
        vm.main.move(1, to: co.state)
        let rounds = 200_000
        co.state.push(rounds)
        let started = ContinuousClock.now
        var outcome = vm.resume(co, arguments: 1)
        var yields = 0
        while case .yielded = outcome {
            yields += 1
            co.state.push(1)
            outcome = vm.resume(co, arguments: 1)
        }
        let elapsed = ContinuousClock.now - started
        guard case .finished = outcome else { Issue.record("did not finish"); return }
        #expect(yields == rounds)
        #expect(co.state.toInteger(at: -1) == Int64(rounds))
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        print("yield/resume round trip: \(Int(nanoseconds / Double(rounds))) ns (\(rounds) rounds)")
    }
}
