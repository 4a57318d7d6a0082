/// What the engine did, summed over its event loops: how well connections are reused, and
/// proof that requests do not schedule timers.
public struct EngineStats: Sendable, Equatable {
    /// Upstream connections established.
    public var connectionsOpened = 0
    /// Requests sent on a connection that had served one before.
    public var connectionsReused = 0
    /// Requests sent.
    public var requests = 0
    /// Timer tasks scheduled (connection deadlines and wait-queue expiry; connect timeouts are
    /// the channel's own and not counted).
    public var timersScheduled = 0
    /// Connections currently open (idle and busy).
    public var openConnections = 0

    public init() {}
}

/// One loop's counters: plain integers, touched only on that loop.
/// Confined to its loop (hence unchecked): only that loop's pool and connections touch it.
final class EngineCounters: @unchecked Sendable {
    var connectionsOpened = 0
    var connectionsReused = 0
    var requests = 0
    var timersScheduled = 0
    var openConnections = 0

    var snapshot: EngineStats {
        var s = EngineStats()
        s.connectionsOpened = connectionsOpened
        s.connectionsReused = connectionsReused
        s.requests = requests
        s.timersScheduled = timersScheduled
        s.openConnections = openConnections
        return s
    }
}
