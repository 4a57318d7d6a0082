import Foundation

/// An error raised by Lua code, with where it happened.
public struct LuaScriptError: Error, Sendable, CustomStringConvertible {
    /// The error message without the traceback (it may start with `file:line:`).
    public var message: String
    /// Lua's stack traceback, if one was taken.
    public var traceback: String
    /// The script file and line the error points at, when Lua gave one.
    public var file: String?
    public var line: Int?
    /// Set when the error is a budget being exceeded rather than a script fault.
    public var budget: LuaBudgetKind?

    public init(message: String, traceback: String = "", budget: LuaBudgetKind? = nil) {
        self.message = message
        self.traceback = traceback
        self.budget = budget
        if let (file, line) = Self.location(in: message) ?? Self.location(inTraceback: traceback) {
            self.file = file
            self.line = line
        }
    }

    /// Splits Lua's "message\nstack traceback:\n..." into its two parts.
    public init(combined: String, budget: LuaBudgetKind? = nil) {
        if let range = combined.range(of: "\nstack traceback:\n") {
            self.init(message: String(combined[..<range.lowerBound]), traceback: String(combined[range.upperBound...]), budget: budget)
        } else {
            self.init(message: combined, budget: budget)
        }
    }

    public var description: String {
        traceback.isEmpty ? message : "\(message)\nstack traceback:\n\(traceback)"
    }

    /// "plugins/x.lua:12: ..." → ("plugins/x.lua", 12)
    static func location(in text: Substring) -> (String, Int)? {
        guard let colon = text.range(of: ".lua:") else { return nil }
        let file = text[..<colon.lowerBound] + ".lua"
        let rest = text[colon.upperBound...]
        let digits = rest.prefix(while: { $0.isNumber })
        guard !digits.isEmpty, let line = Int(digits), rest.dropFirst(digits.count).first == ":" else { return nil }
        let trimmed = file.drop(while: { $0 == " " || $0 == "\t" })
        return (String(trimmed), line)
    }

    static func location(in message: String) -> (String, Int)? { location(in: message[...]) }

    /// The first frame of a traceback that points into a script file.
    static func location(inTraceback traceback: String) -> (String, Int)? {
        for line in traceback.split(separator: "\n") {
            if let found = location(in: line) { return found }
        }
        return nil
    }
}
