/// Why a Redis command did not get a reply. Only ``server(_:)`` comes from Redis itself; the
/// others mean the store could not be reached in time, which callers treat as unavailable.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not connected, and a new connection failed or is not yet due (backoff).
    case unavailable(String)
    /// No reply within the command timeout; the connection is closed (replies are in order, so a
    /// late one cannot be told apart from the next command's).
    case timedOut
    /// The connection closed before the reply arrived.
    case connectionClosed
    /// The bytes from the server were not RESP.
    case protocolError(String)
    /// An error reply (`-ERR`, `-NOSCRIPT`, `-WRONGPASS` …).
    case server(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "Redis unavailable: \(why)"
        case .timedOut: "Redis command timed out"
        case .connectionClosed: "Redis connection closed"
        case .protocolError(let why): "Redis protocol error: \(why)"
        case .server(let message): "Redis error: \(message)"
        }
    }
}
