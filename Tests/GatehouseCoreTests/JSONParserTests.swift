import Foundation
@testable import GatehouseCore
import Testing

/// `JSONValue.parse` is a hand-written parser; it replaced Foundation's `JSONDecoder` with
/// `JSONValue`'s Codable conformance, and must accept, refuse and yield what that did.
@Suite struct JSONParserTests {
    static func decoder(_ text: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text))
    }

    static func parser(_ text: [UInt8]) -> JSONValue? {
        try? JSONValue.parse(text)
    }

    static let corpus: [String] = [
        "null", "true", "false", "0", "-0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "-9223372036854775809", "1.5", "-0.0", "1e3", "1E-3", "2.5e+10", "0.1", "123456789.123",
        "1e308", "1e400", "-1e400", "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity",
        "\"\"", "\"a\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u4e2d\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"",
        "\"\\ude00\"", "\"\\ud83dx\"", "\"\\u12\"", "\"\\x\"", "\"tab\there\"", "\"line\nbreak\"", "\"unterminated",
        "\"é 中文 😀\"", "[]", "[1,2,3]", "[1,]", "[,1]", "[1 2]", "[", "]", "{}", "{\"a\":1}", "{\"a\":1,}", "{a:1}",
        "{\"a\" 1}", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":[true,null,{\"c\":\"d\"}]}}", " \n\t {\"x\" : [ 1 , 2 ] } \r\n",
        "{\"a\":1}x", "1 2", "", " ", "nul", "truex", "[true false]", "{\"\":0}", "[[[[[]]]]]",
        "{\"amount\": 1250, \"currency\": \"eur\"}", "{\"sku\":\"A-1\",\"qty\":2}",
        "[1 , ]", "{ \"a\":1 , }", "[,]", "{,}", "[1,,2]", "2.0", "1.0e0", "1e-400", "9.3e18", "-9.3e18", "1e18",
        "0.30000000000000004", "1.7976931348623157e308", "5e-324", #"["\u0000"]"#, #""\u001f""#, #""\u007f""#,
        "{\"a\":[1,{\"b\":[]},\"c\"],\"d\":{}}", "\t[1]\n", "[1]\u{0}",
    ]

    @Test func theCorpusParsesAsTheDecoderDid() {
        for text in Self.corpus {
            let bytes = Array(text.utf8)
            #expect(Self.parser(bytes) == Self.decoder(bytes), "\(text.debugDescription)")
        }
    }

    @Test func invalidUTF8AndDeepNestingAreRefused() {
        #expect(Self.parser([0x22, 0xFF, 0x22]) == nil)
        #expect(Self.parser([0x22, 0xC3, 0x22]) == nil)
        #expect(Self.parser(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)) == nil)
        #expect(Self.parser(Array((String(repeating: "[", count: 500) + String(repeating: "]", count: 500)).utf8)) != nil)
    }

    /// Random documents, serialised, parse back to themselves and to what the decoder reads.
    @Test func randomDocumentsRoundTripAndMatchTheDecoder() {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["a", "é", "中", "😀", "\"", "\\", "/", "\n", "\u{1}", " ", "key"]
        func random(depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &rng))
            case 2: return .int(Int64.random(in: .min ... .max, using: &rng) >> Int64.random(in: 0..<63, using: &rng))
            case 3: return .double(Double.random(in: -1e6...1e6, using: &rng).rounded(.towardZero) + 0.5)
            case 4: return .string((0..<Int.random(in: 0..<6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined())
            case 5: return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in random(depth: depth + 1) })
            default:
                var members: [String: JSONValue] = [:]
                for _ in 0..<Int.random(in: 0..<4, using: &rng) { members[pieces.randomElement(using: &rng)! + String(Int.random(in: 0..<9, using: &rng))] = random(depth: depth + 1) }
                return .object(members)
            }
        }
        for _ in 0..<2_000 {
            let value = random(depth: 0)
            let text = value.serialized()
            #expect(Self.parser(text) == value, "\(String(decoding: text, as: UTF8.self))")
            #expect(Self.parser(text) == Self.decoder(text), "\(String(decoding: text, as: UTF8.self))")
        }
    }
}
