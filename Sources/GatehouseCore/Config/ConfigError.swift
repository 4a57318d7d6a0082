/// One problem found in the configuration, located by file, JSON pointer and line.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// RFC 6901 pointer into the file ("" for the whole document).
    public var pointer: String
    public var line: Int?
    public var message: String

    public init(file: String, pointer: String = "", line: Int? = nil, message: String) {
        self.file = file
        self.pointer = pointer
        self.line = line
        self.message = message
    }

    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        if !pointer.isEmpty { out += " (\(pointer))" }
        return out + ": " + message
    }
}

/// Every problem found in one load; a load either succeeds whole or reports all of these.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
