import CGatehouseLua

/// Identifies a host function registered with a ``LuaVM``.
public struct HostFunctionID: Hashable, Sendable {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
}

/// What a Swift host function tells its C trampoline. The trampoline, not Swift, raises the
/// error or yields, after this Swift frame has returned (Lua uses longjmp for both).
public enum HostResult: Sendable {
    /// `n` results are on top of the stack.
    case values(Int32)
    /// Raise a Lua error with this message (the trampoline adds the caller's file:line).
    case error(String)
    /// Suspend the running coroutine; the driver resumes it with the results of the operation
    /// the function recorded before returning.
    case yield
}

/// A Swift function callable from Lua. It receives the calling thread, whose stack holds the
/// arguments, and must only use non-raising operations (everything on ``LuaState`` is).
public typealias HostFunction = (LuaState) -> HostResult

extension HostResult {
    /// The standard "bad argument" error, worded like Lua's own. `slot` is where the argument
    /// is on the stack when that differs from its position as the policy wrote the call (host
    /// functions behind methods receive handles first).
    public static func badArgument(_ position: Int32, _ function: String, expected: String, state: LuaState, slot: Int32? = nil) -> HostResult {
        let at = slot ?? position
        return .error("bad argument #\(position) to '\(function)' (\(expected) expected, got \(state.type(at: at) == .none ? "no value" : state.typeName(at: at)))")
    }
}
