/// JSON text (RFC 8259) to ``JSONValue``, by recursive descent over the bytes.
///
/// Written by hand because Foundation's Codable `JSONDecoder`, with `JSONValue`'s try-each-type
/// `init(from:)`, was the largest single cost of a policy that reads a small JSON body (an
/// error thrown and caught for every type tried). What it accepts and what it yields is what
/// that decoder did (`JSONParserTests` compares them): any value at the top level; a number
/// whose value is integral and fits `Int64` as `.int` (`1e3` and `-0.0` too; a digits-only
/// literal beyond `Int64` is a `.double`), every other as
/// `.double`; the first of duplicate keys; a trailing comma in an array or object (the decoder
/// allowed it); escapes including surrogate pairs. Invalid UTF-8, lone surrogates, control
/// characters in strings, trailing text and nesting deeper than 512 are errors.
struct JSONParser {
    struct Failure: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0
    static let maxDepth = 512

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.i == bytes.count else { throw parser.fail("unexpected text after the value") }
        return value
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: i, reason: reason) }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private mutating func value() throws(Failure) -> JSONValue {
        guard let byte = peek else { throw fail("a value was expected") }
        switch byte {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("a value was expected")
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - i >= count else { throw fail("a value was expected") }
        for k in 0..<count where bytes[i + k] != word.utf8Start[k] { throw fail("a value was expected") }
        i += count
    }

    private mutating func nest() throws(Failure) {
        depth += 1
        if depth > Self.maxDepth { throw fail("nested deeper than \(Self.maxDepth)") }
    }

    private mutating func object() throws(Failure) -> JSONValue {
        try nest()
        i += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail("a member name was expected") }
            let key = try string()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw fail("':' was expected") }
            i += 1
            skipWhitespace()
            let member = try value()
            if members[key] == nil { members[key] = member }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                i += 1
                skipWhitespace()
                if peek == UInt8(ascii: "}") {
                    i += 1
                    depth -= 1
                    return .object(members)
                }
            case UInt8(ascii: "}"):
                i += 1
                depth -= 1
                return .object(members)
            default: throw fail("',' or '}' was expected")
            }
        }
    }

    private mutating func array() throws(Failure) -> JSONValue {
        try nest()
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value())
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                i += 1
                skipWhitespace()
                if peek == UInt8(ascii: "]") {
                    i += 1
                    depth -= 1
                    return .array(items)
                }
            case UInt8(ascii: "]"):
                i += 1
                depth -= 1
                return .array(items)
            default: throw fail("',' or ']' was expected")
            }
        }
    }

    private mutating func string() throws(Failure) -> String {
        i += 1 // the opening quote
        let start = i
        // Fast path: no escapes, ASCII or valid UTF-8, ends at the next quote.
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<i])
                i += 1
                guard let text = String(validating: raw, as: UTF8.self) else { throw Failure(offset: start, reason: "invalid UTF-8 in a string") }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("a control character in a string") }
            i += 1
        }
        // With escapes: decode into a byte buffer.
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: "\""):
                i += 1
                guard let text = String(validating: out, as: UTF8.self) else { throw Failure(offset: start, reason: "invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                i += 1
                guard let escape = peek else { throw fail("an unterminated string") }
                i += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("a lone surrogate in a string")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("a lone surrogate in a string")
                    }
                    out.append(contentsOf: Character(Unicode.Scalar(scalar)!).utf8)
                default:
                    throw fail("an invalid escape in a string")
                }
            default:
                if byte < 0x20 { throw fail("a control character in a string") }
                out.append(byte)
                i += 1
            }
        }
        throw fail("an unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard bytes.count - i >= 4 else { throw fail("an invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[i]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("an invalid \\u escape")
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(Failure) -> JSONValue {
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        guard let first = peek, first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { throw fail("a digit was expected") }
        if first == UInt8(ascii: "0") {
            i += 1
        } else {
            while let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") { i += 1 }
        }
        var integral = true
        if peek == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { throw fail("a digit was expected") }
            while let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") { i += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            integral = false
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { throw fail("a digit was expected") }
            while let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if integral, let int = Int64(text) { return .int(int) }
        guard let double = Double(text), double.isFinite else { throw Failure(offset: start, reason: "a number out of range") }
        // A fraction or exponent with an integral value that fits is an integer too (`1e3`,
        // `2.0`); a digits-only literal beyond Int64 stays a double, as the decoder had it.
        if !integral, double.rounded() == double, double >= -9.223372036854775808e18, double < 9.223372036854775808e18 {
            return .int(Int64(double))
        }
        return .double(double)
    }
}
