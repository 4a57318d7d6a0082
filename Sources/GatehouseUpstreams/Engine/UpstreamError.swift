/// Why an upstream exchange failed. Each maps to one problem (``UpstreamClient/problem(for:logger:url:)``):
/// the timeouts to 504, an answer that is not valid HTTP to 502 `upstream-invalid-response`,
/// everything else to 502 `upstream-unavailable`.
enum UpstreamError: Error, CustomStringConvertible {
    case invalidURL
    case connectFailed(any Error)
    case connectTimeout
    /// No response head within the response timeout.
    case responseTimeout
    /// A response body stalled longer than the response timeout.
    case readTimeout
    /// The connection closed (or failed) before the whole response arrived.
    case closed(any Error)
    /// The answer is HTTP but not one that can be forwarded (a status outside 200-599).
    case invalidResponse(String)
    /// All connections to the origin were busy, and the wait queue full or its wait over.
    case poolExhausted
    case shuttingDown

    var isTimeout: Bool {
        switch self {
        case .connectTimeout, .responseTimeout, .readTimeout: return true
        default: return false
        }
    }

    var description: String {
        switch self {
        case .invalidURL: return "not an http or https URL with a host"
        case .connectFailed(let error): return "connect failed: \(error)"
        case .connectTimeout: return "connect timed out"
        case .responseTimeout: return "no response head within the timeout"
        case .readTimeout: return "the response body stalled past the timeout"
        case .closed(let error): return "connection closed before the response was complete (\(error))"
        case .invalidResponse(let detail): return "invalid response: \(detail)"
        case .poolExhausted: return "no connection to the upstream became free in time"
        case .shuttingDown: return "the gateway is shutting down"
        }
    }
}

/// The connection ended before the response did.
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the upstream closed the connection" }
}
