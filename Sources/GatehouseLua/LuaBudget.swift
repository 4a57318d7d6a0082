import CGatehouseLua

/// Limits for one policy invocation, for its whole life: an invocation that yields (for
/// `http.fetch`, a loader, a body read) keeps one budget across every resume.
///
/// The count hook checks them every 1,000 VM instructions (after every instruction once one is
/// exceeded). Hooks do not run inside C functions; the one C function whose work depends on its
/// input, the pattern matcher, counts its own steps.
public struct LuaBudget: Sendable, Equatable {
    /// VM instructions per invocation; 0 means unlimited.
    public var instructions: UInt64
    /// Time the invocation's Lua code may spend running, in nanoseconds, summed over its
    /// resumes; 0 means unlimited. Time spent waiting for I/O does not count.
    public var timeNanoseconds: UInt64
    /// Time from the invocation's start to its end, waits for I/O included, in nanoseconds;
    /// 0 means unlimited. A wait still running at the deadline is abandoned.
    public var wallNanoseconds: UInt64

    public init(instructions: UInt64, timeNanoseconds: UInt64, wallNanoseconds: UInt64 = 0) {
        self.instructions = instructions
        self.timeNanoseconds = timeNanoseconds
        self.wallNanoseconds = wallNanoseconds
    }

    /// 10 million instructions, 1 s of running time, 30 s in all: far above any sane policy,
    /// far below a stuck worker.
    public static let `default` = LuaBudget(instructions: 10_000_000, timeNanoseconds: 1_000_000_000, wallNanoseconds: 30_000_000_000)
    public static let unlimited = LuaBudget(instructions: 0, timeNanoseconds: 0)
}

/// The budget of one running invocation: its limits and what it has used so far, carried
/// across every resume of it.
public final class LuaInvocation: @unchecked Sendable {
    /// Heap-allocated so C can update it while Swift code (a host function) reads it, without a
    /// Swift exclusive access spanning the resume.
    let state: UnsafeMutablePointer<gh_budget>

    /// Starts the clocks now.
    public init(budget: LuaBudget) {
        state = .allocate(capacity: 1)
        state.initialize(to: gh_budget())
        gh_budget_init(state, budget.instructions, budget.timeNanoseconds, budget.wallNanoseconds)
    }

    deinit { state.deallocate() }

    /// The budget that ended the invocation, if one did.
    public var exceeded: LuaBudgetKind? { LuaBudgetKind(code: state.pointee.hit) }
    /// VM instructions run so far (counted in steps of the hook interval).
    public var instructionsUsed: UInt64 { state.pointee.instructions_used }
    /// Time spent running Lua code so far, in nanoseconds.
    public var runningNanoseconds: UInt64 { state.pointee.cpu_used_ns }
    /// Nanoseconds left before the wall-clock deadline (nil: no deadline).
    public var wallNanosecondsLeft: UInt64? {
        let deadline = state.pointee.wall_deadline_ns
        guard deadline != 0 else { return nil }
        let now = gh_now_ns()
        return deadline > now ? deadline - now : 0
    }
}

/// Which budget ended an invocation.
public enum LuaBudgetKind: String, Sendable {
    case instructions = "instruction"
    case time
    case memory
    case wallClock = "wall-clock"

    init?(code: Int32) {
        switch code {
        case GH_BUDGET_INSTRUCTIONS: self = .instructions
        case GH_BUDGET_DEADLINE: self = .time
        case GH_BUDGET_MEMORY: self = .memory
        case GH_BUDGET_WALL: self = .wallClock
        default: return nil
        }
    }
}
