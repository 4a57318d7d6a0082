import Foundation
import GatehouseCore
import Testing

/// `JSONValue.serialized()` is written by hand for speed; it must produce exactly what
/// `JSONEncoder` (sorted keys, unescaped slashes) produces, which it replaced.
@Suite struct JSONValueTests {
    static func encoderOutput(_ value: JSONValue) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static let trickyStrings = [
        "", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
        "é ü 中文 😀", "\u{2028}\u{2029}\u{fffe}", "key with spaces", "10", "9", "B", "a", "_",
    ]
    static let trickyNumbers: [Double] = [
        0, -0.0, 1, -1, 3.0, 12.5, 0.1, 1e-7, 2.5e-10, 1e15, 1e16, 123456789012345, 123456789.123,
        9_007_199_254_740_992, Double(Int64.max), 1e300, -1e-300, .leastNonzeroMagnitude, .pi, -2.75,
    ]

    @Test func tricky() throws {
        var values: [JSONValue] = [.null, .bool(true), .bool(false), .int(0), .int(.min), .int(.max), .int(-42)]
        values += Self.trickyStrings.map(JSONValue.string)
        values += Self.trickyNumbers.map(JSONValue.double)
        values.append(.object(Dictionary(uniqueKeysWithValues: Self.trickyStrings.enumerated().map { ($1, JSONValue.int(Int64($0))) })))
        values.append(.array(values))
        for value in values {
            #expect(value.serialized() == (try Self.encoderOutput(value)), "\(value)")
        }
    }

    @Test func randomDocumentsMatchJSONEncoder() throws {
        var rng = SystemRandomNumberGenerator()
        func random(depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &rng))
            case 2: return .int(Int64.random(in: .min ... .max, using: &rng) >> Int64.random(in: 0..<63, using: &rng))
            case 3: return .double(Self.trickyNumbers.randomElement(using: &rng)! * Double.random(in: -1e6...1e6, using: &rng))
            case 4:
                let scalars = (0..<Int.random(in: 0..<12, using: &rng)).compactMap { _ in
                    Unicode.Scalar(UInt32.random(in: 0..<0x1_0000, using: &rng)).flatMap { (0xD800...0xDFFF).contains($0.value) ? nil : $0 }
                }
                return .string(String(String.UnicodeScalarView(scalars)))
            case 5: return .array((0..<Int.random(in: 0..<5, using: &rng)).map { _ in random(depth: depth + 1) })
            default:
                var members: [String: JSONValue] = [:]
                for _ in 0..<Int.random(in: 0..<5, using: &rng) {
                    members[Self.trickyStrings.randomElement(using: &rng)! + String(Int.random(in: 0..<100, using: &rng))] = random(depth: depth + 1)
                }
                return .object(members)
            }
        }
        for _ in 0..<2_000 {
            let value = random(depth: 0)
            let expected = try Self.encoderOutput(value)
            #expect(value.serialized() == expected, "\(String(decoding: expected, as: UTF8.self))")
        }
    }
}
