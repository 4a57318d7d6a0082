import CGatehouseLua

/// Limits for one policy invocation. The count hook checks both the instruction count and the
/// wall-clock deadline every 1,000 VM instructions; hooks do not run inside C functions, so a
/// single long C call (a pattern match on a huge string) is only bounded when it returns.
public struct LuaBudget: Sendable, Equatable {
    /// VM instructions per invocation; 0 means unlimited.
    public var instructions: UInt64
    /// Wall-clock time the Lua code may run per resume, in nanoseconds; 0 means unlimited.
    /// Time spent waiting for I/O while the coroutine is suspended does not count.
    public var timeNanoseconds: UInt64

    public init(instructions: UInt64, timeNanoseconds: UInt64) {
        self.instructions = instructions
        self.timeNanoseconds = timeNanoseconds
    }

    /// 10 million instructions and 1 s: far above any sane policy, far below a stuck worker.
    public static let `default` = LuaBudget(instructions: 10_000_000, timeNanoseconds: 1_000_000_000)
    public static let unlimited = LuaBudget(instructions: 0, timeNanoseconds: 0)
}

/// Which budget ended an invocation.
public enum LuaBudgetKind: String, Sendable {
    case instructions = "instruction"
    case time
    case memory

    init?(code: Int32) {
        switch code {
        case GH_BUDGET_INSTRUCTIONS: self = .instructions
        case GH_BUDGET_DEADLINE: self = .time
        case GH_BUDGET_MEMORY: self = .memory
        default: return nil
        }
    }
}
