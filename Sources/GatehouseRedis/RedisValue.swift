/// One RESP2 reply, as hiredis' reader decodes it.
public enum RedisValue: Sendable, Equatable {
    /// `+OK` and other status replies.
    case status(String)
    /// `-ERR …`: the server refused the command.
    case error(String)
    case integer(Int64)
    /// A bulk string: bytes, not necessarily UTF-8.
    case bulk([UInt8])
    /// The null bulk string or null array (a missing key, a nil from a script).
    case null
    case array([RedisValue])

    /// The text of a bulk string or status (UTF-8, invalid bytes replaced), or nil.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// An integer reply, or a bulk string holding one.
    public var integer: Int64? {
        switch self {
        case .integer(let n): n
        case .bulk: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
