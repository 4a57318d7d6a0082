import Foundation
import GatehouseLua
import Testing

/// A budget, once exceeded, ends the whole invocation: no Lua-level protection (message
/// handlers, coroutines, metamethods, callbacks, load's reader) can catch it or run on without
/// one, and one budget covers every resume of an invocation.
/// Where a helper thread leaves what it computed.
final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

@Suite struct InvocationBudgetTests {
    /// Runs `body` on a thread of its own and fails the test if it has not returned within
    /// `seconds`: a regression here is a hang, and a hang must not take the whole run with it.
    /// (Generous on purpose: this is a liveness check, not a speed measurement.)
    func returns<T: Sendable>(within seconds: Double = 60, _ body: @escaping @Sendable () throws -> T) throws -> T? {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            box.result = Result { try body() }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + seconds) == .success else {
            Issue.record("did not return within \(seconds) s: the budget did not hold")
            return nil
        }
        return try box.result!.get()
    }

    /// Loads and runs `source` as one protected call; returns the error it ended with.
    func failure(_ source: String, budget: LuaBudget = LuaBudget(instructions: 2_000_000, timeNanoseconds: 0), memory: Int = 0) throws -> LuaScriptError? {
        try returns { () throws -> LuaScriptError? in
            let vm = try LuaVM(memoryLimit: memory)
            vm.budget = budget
            do throws(LuaScriptError) {
                try vm.load(source, chunkName: "plugins/hostile.lua")
                try vm.protectedCall(arguments: 0, results: 1)
                return nil
            } catch {
                // The VM serves the next call.
                try vm.load("return 6 * 7", chunkName: "plugins/next.lua")
                try vm.protectedCall(arguments: 0, results: 1)
                #expect(vm.main.toInteger(at: -1) == 42)
                return error
            }
        } ?? nil
    }

    static let hostile: [(String, String)] = [
        ("looping message handler", "xpcall(function() error('x') end, function() while true do end end) return 'answered'"),
        ("looping handler after a budget error", "xpcall(function() while true do end end, function() while true do end end) return 'answered'"),
        ("handler that loops then errors", "xpcall(function() error('x') end, function() for i = 1, 1e12 do end error('y') end) return 'answered'"),
        ("loop in a resumed coroutine", "local co = coroutine.create(function() while true do end end) local ok = coroutine.resume(co) return 'answered'"),
        ("loop in coroutine.wrap", "local f = coroutine.wrap(function() while true do end end) pcall(f) return 'answered'"),
        ("nested coroutines", "local co = coroutine.create(function() coroutine.resume(coroutine.create(function() while true do end end)) return 1 end) coroutine.resume(co) return 'answered'"),
        ("loop in an __index metamethod", "local t = setmetatable({}, { __index = function() while true do end end }) pcall(function() return t.x end) return 'answered'"),
        ("loop in __tostring", "pcall(tostring, setmetatable({}, { __tostring = function() while true do end end })) return 'answered'"),
        ("loop in a gsub callback", "pcall(string.gsub, 'abc', '%w', function() while true do end end) return 'answered'"),
        ("loop in a sort comparator", "pcall(table.sort, {3, 2, 1}, function(a, b) while true do end end) return 'answered'"),
        ("loop in load's reader", "local f, err = load(function() while true do end end) return 'answered'"),
        ("pcall in a loop", "while true do pcall(function() while true do end end) end"),
        ("loop in a __close handler", "do local x <close> = setmetatable({}, { __close = function() while true do end end }) while true do end end"),
        ("coroutine.close on a looping __close", "local co = coroutine.create(function() local x <close> = setmetatable({}, { __close = function() while true do end end }) coroutine.yield() end) coroutine.resume(co) coroutine.close(co) return 'answered'"),
        ("error object with a looping __tostring", "error(setmetatable({}, { __tostring = function() while true do end end }))"),
    ]

    @Test(arguments: hostile.map(\.0))
    func aBudgetEndsTheInvocationWhateverCatchesIt(_ name: String) throws {
        let source = Self.hostile.first { $0.0 == name }!.1
        let error = try failure(source)
        #expect(error != nil, "\(name): the policy went on after its budget")
        #expect(error?.budget == .instructions, "\(name): \(error?.message ?? "")")
    }

    @Test func theTimeBudgetHoldsInsideAMessageHandler() throws {
        let error = try failure("xpcall(function() error('x') end, function() while true do end end)", budget: LuaBudget(instructions: 0, timeNanoseconds: 100_000_000))
        #expect(error?.budget == .time)
    }

    @Test func aMemoryBombInAMessageHandlerIsStopped() throws {
        let error = try failure("xpcall(function() error('x') end, function() local s = 'x' while true do s = s .. s end end) return 'answered'", memory: 16 << 20)
        #expect(error?.budget == .memory, "\(error?.message ?? "no error")")
    }

    /// A coroutine stopped by a budget in one invocation, closed by the next: its looping
    /// `__close` handler must not run without a budget (the dead thread's hooks are off).
    @Test func aCoroutineKilledByABudgetIsNeverClosedLater() throws {
        let answer: String? = try returns { () throws -> String? in
            let vm = try LuaVM()
            vm.budget = LuaBudget(instructions: 2_000_000, timeNanoseconds: 0)
            try vm.load("""
                co = coroutine.create(function()
                  local x <close> = setmetatable({}, { __close = function() while true do end end })
                  while true do end
                end)
                coroutine.resume(co)
                """, chunkName: "plugins/first.lua")
            #expect(throws: LuaScriptError.self) { try vm.protectedCall(arguments: 0, results: 0) }
            try vm.load("local ok, err = coroutine.close(co) return tostring(ok) .. ' ' .. tostring(err)", chunkName: "plugins/second.lua")
            try vm.protectedCall(arguments: 0, results: 1)
            return vm.main.toString(at: -1)
        } ?? nil
        #expect(answer == "false the coroutine was stopped by a budget")
    }

    /// The request coroutine itself stopped by a budget with a looping `__close` pending:
    /// releasing it must not run the handler.
    @Test func releasingAFailedCoroutineRunsNoCloseHandler() throws {
        let released: Bool? = try returns { () throws -> Bool in
            let vm = try LuaVM()
            vm.budget = LuaBudget(instructions: 2_000_000, timeNanoseconds: 0)
            try vm.load("return function() local x <close> = setmetatable({}, { __close = function() while true do end end }) while true do end end", chunkName: "plugins/tbc.lua")
            try vm.protectedCall(arguments: 0, results: 1)
            let co = vm.acquireCoroutine()
            vm.main.move(1, to: co.state)
            guard case .failed(let error) = vm.resume(co, arguments: 0, invocation: LuaInvocation(budget: vm.budget)) else { return false }
            #expect(error.budget == .instructions)
            vm.releaseCoroutine(co)
            return true
        } ?? nil
        #expect(released == true)
    }

    /// One budget for the whole invocation: 50 yields with ~100k instructions between them
    /// exhaust a 1M-instruction budget once, around the tenth stretch, not never.
    @Test func anInvocationThatYieldsKeepsOneBudget() throws {
        let (vm, co) = try LuaVM.yielding("return function() for round = 1, 50 do for i = 1, 100000 do end wait() end return 'finished' end", chunkName: "plugins/yielder.lua")
        let invocation = LuaInvocation(budget: LuaBudget(instructions: 1_000_000, timeNanoseconds: 0))
        var resumes = 1
        var outcome = vm.resume(co, arguments: 0, invocation: invocation)
        while case .yielded = outcome {
            resumes += 1
            outcome = vm.resume(co, arguments: 0, invocation: invocation)
        }
        guard case .failed(let error) = outcome else {
            Issue.record("50 stretches of 100k instructions ran on a 1M budget")
            return
        }
        #expect(error.budget == .instructions)
        #expect((9...12).contains(resumes), "the budget ran out after \(resumes) resumes")
        #expect(invocation.exceeded == .instructions)
        vm.releaseCoroutine(co)
    }

    /// Running time is summed over resumes too, and time spent suspended does not count.
    @Test func runningTimeIsSummedAndWaitsDoNotCount() throws {
        let (vm, co) = try LuaVM.yielding("return function() for round = 1, 3 do wait() end return 'finished' end", chunkName: "plugins/waiter.lua")
        let invocation = LuaInvocation(budget: LuaBudget(instructions: 0, timeNanoseconds: 200_000_000))
        var outcome = vm.resume(co, arguments: 0, invocation: invocation)
        while case .yielded = outcome {
            Thread.sleep(forTimeInterval: 0.1) // three waits: longer than the running-time budget
            outcome = vm.resume(co, arguments: 0, invocation: invocation)
        }
        guard case .finished = outcome else { Issue.record("waiting counted as running: \(outcome)"); return }
        #expect(invocation.runningNanoseconds < 200_000_000)
        vm.releaseCoroutine(co)
    }

    /// The wall clock counts waits: an invocation resumed after its deadline runs no more code.
    @Test func theWallClockDeadlineCountsWaits() throws {
        let (vm, co) = try LuaVM.yielding("return function() wait() ran_after = true return 'finished' end", chunkName: "plugins/late.lua")
        let invocation = LuaInvocation(budget: LuaBudget(instructions: 0, timeNanoseconds: 0, wallNanoseconds: 50_000_000))
        guard case .yielded = vm.resume(co, arguments: 0, invocation: invocation) else { Issue.record("expected a yield"); return }
        Thread.sleep(forTimeInterval: 0.1)
        guard case .failed(let error) = vm.resume(co, arguments: 0, invocation: invocation) else { Issue.record("resumed past the deadline"); return }
        #expect(error.budget == .wallClock)
        vm.releaseCoroutine(co)
        try vm.load("return ran_after", chunkName: "plugins/check.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        #expect(vm.main.type(at: -1) == .nil, "code after the wait ran")
    }

    /// A plain search is linear: a 2 MB needle in a 4 MB subject that almost matches everywhere
    /// (quadratic for a memchr + memcmp scan: hours) returns.
    @Test func aPlainSearchIsLinearInTheSubject() throws {
        let found: Bool? = try returns { () throws -> Bool in
            let vm = try LuaVM(memoryLimit: 64 << 20)
            vm.budget = LuaBudget(instructions: 0, timeNanoseconds: 0)
            try vm.load("local s = string.rep('a', 4000000) local n = string.rep('a', 2000000) .. 'b' return string.find(s, n, 1, true) == nil and s:find(n) == nil", chunkName: "plugins/plain.lua")
            try vm.protectedCall(arguments: 0, results: 1)
            return vm.main.toBool(at: -1)
        } ?? nil
        #expect(found == true)
    }

    /// Ordinary protection still works while the budget holds.
    @Test func ordinaryErrorsAreStillCaught() throws {
        let vm = try LuaVM()
        try vm.load("""
            local a = select(2, xpcall(function() error('x', 0) end, function(m) return 'handled ' .. m end))
            local b = select(2, coroutine.resume(coroutine.create(function() error('y', 0) end)))
            local c = select(2, pcall(coroutine.wrap(function() error('z', 0) end)))
            local d = coroutine.wrap(function(v) local w = coroutine.yield(v + 1) return w * 2 end)
            local e = select(2, load(function() return nil end))
            return a .. '|' .. b .. '|' .. c .. '|' .. d(1) .. '|' .. tostring(e)
            """, chunkName: "plugins/ordinary.lua")
        try vm.protectedCall(arguments: 0, results: 1)
        #expect(vm.main.toString(at: -1) == "handled x|y|z|2|nil")
    }
}
