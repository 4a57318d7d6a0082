import GatehouseLua
import Testing


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
        let (vm, co) = try LuaVM.yielding("return function() local v = wait() return v * 2 end", chunkName: "plugins/y.lua")
        guard case .yielded = vm.resume(co, arguments: 0) else { Issue.record("expected a yield"); return }
        co.state.push(21)
        guard case .finished(let n) = vm.resume(co, arguments: 1) else { Issue.record("expected completion"); return }
        #expect(n == 1)
        #expect(co.state.toInteger(at: -1) == 42)
        vm.releaseCoroutine(co)
    }

    @Test func yieldThroughACBoundaryIsACleanError() throws {
        let (vm, co) = try LuaVM.yielding("return function() table.sort({3, 1, 2}, function(a, b) wait() return a < b end) end", chunkName: "plugins/sort.lua")
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

    /// A host function walking a table never runs Lua code: a value with a `__tostring` that
    /// empties and regrows the table (which made `next` raise through the Swift frame when the
    /// host rendered values with tostring) is refused as "not plain", the traversal finishes,
    /// and the host's `defer` runs.
    @Test func aTraversalRunsNoLuaCodeSoATableCannotChangeUnderIt() throws {
        let vm = try LuaVM()
        let cleanups = Counter()
        let visited = Counter()
        let id = vm.register { L in
            defer { cleanups.value += 1 }
            L.pushNil()
            while L.next(1) {
                visited.value += 1
                guard L.plainText(at: -1) != nil else {
                    let key = L.toString(at: -2) ?? "?"
                    L.pop(2)
                    return .error("value of '\(key)' is not plain")
                }
                L.pop()
            }
            return .values(0)
        }
        vm.main.pushHostFunction(id)
        vm.setGlobal("walk")
        try run(vm, """
            local h = {}
            for i = 1, 20 do h['k' .. i] = i end
            h.evil = setmetatable({}, { __tostring = function()
              for k in pairs(h) do h[k] = nil end
              for i = 1, 100 do h['n' .. i] = 'z' end
              return 'v'
            end })
            local ok, err = pcall(walk, h)
            local n = 0 for _ in pairs(h) do n = n + 1 end
            return tostring(ok) .. ' ' .. n
            """)
        #expect(vm.main.toString(at: -1) == "false 21", "the table was changed during the traversal")
        #expect(cleanups.value == 1)
        #expect(visited.value >= 1)
        // Plain values keep their text, numbers as Lua writes them.
        try run(vm, "return walk({ a = 'x', b = 1, c = 2.5, d = true })")
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

    static let backtrackingShapes = ["a-a-a-a-b", "%w+%w+%w+b", "[ab]+[ab]+[ab]+c", ".-.-.-x", "a*a*a*a*b", ".*.*.*b", "(a-)(a-)(a-)b", "a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?aaaaaaaaaaaaaaaab"]

    /// Hooks cannot interrupt C code, so the pattern functions count their own matching steps:
    /// every backtracking shape, through every function, on a short and a 64 KiB subject, ends
    /// with a result or a clear refusal, and the VM serves the next call.
    @Test(arguments: backtrackingShapes)
    func everyPatternFunctionIsBoundedOnEveryShape(_ pattern: String) throws {
        let vm = try LuaVM()
        vm.budget = LuaBudget(instructions: 0, timeNanoseconds: 0) // only the matcher's own bound
        for size in [300, 65_536] {
            for call in ["string.find(s, p)", "string.match(s, p)", "(s):match(p)", "string.gsub(s, p, '')",
                         "(function() local n = 0 for m in string.gmatch(s, p) do n = n + 1 end return n end)()"] {
                let source = "local s, p = string.rep('a', \(size)), \(luaQuoted(pattern))\nreturn \(call)"
                do {
                    try run(vm, source)
                } catch {
                    #expect(error.message.contains("pattern too costly"), "\(call) with \(pattern) on \(size) bytes: \(error.message)")
                }
                try run(vm, "return ('next'):upper()")
                #expect(vm.main.toString(at: -1) == "NEXT")
                vm.main.setTop(0)
            }
        }
    }

    func luaQuoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "\\'") + "'" }

    /// The patterns policies really use keep working, on big subjects too.
    @Test func ordinaryPatternsWork() throws {
        let vm = try LuaVM()
        let checks = [
            "return select('#', ('k=v&a=b&c=d'):gsub('([^&=]+)=([^&=]*)', '%1')) == 2",
            "return (string.rep('ab', 50000)):find('abab', 1, true) == 1",
            "return (string.rep('x', 1000)):match('^(.-)$') == string.rep('x', 1000)",
            "return ('%d'):format(7) == '7' and (('a.b'):find('.', 1, true)) == 2",
            "return ('sk_live_123'):find('^sk_') == 1 and ('Bearer abc'):match('^Bearer%s+(.+)$') == 'abc'",
            "local n = 0 for seg in (string.rep('/seg', 16384)):gmatch('[^/]+') do n = n + 1 end return n == 16384",
            "return (string.rep('7', 65536)):match('%d+') == string.rep('7', 65536)",
            "return ('/v1/customers/42'):match('^/v1/(.*)$') == 'customers/42'",
            "return select(2, ('a b  c'):gsub('%s+', ' ')) == 2 and ('f(a(b)c)'):match('%b()') == '(a(b)c)'",
            "return ('THE (quick) fox'):find('%f[%a]%a+', 5) == 6",
        ]
        for check in checks {
            try run(vm, check)
            #expect(vm.main.toBool(at: -1), "\(check)")
            vm.main.setTop(0)
        }
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
        let (vm, co) = try LuaVM.yielding("return function(n) local s = 0 for i = 1, n do s = s + wait() end return s end", chunkName: "plugins/yield.lua")
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
