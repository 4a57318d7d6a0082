import Foundation
import GatehouseCore
import HTTPTypes

/// The properties the fuzz harness (`gatehouse-fuzz`) checks on each input, shared with the
/// regression test that replays saved inputs. Each returns a description of a violated
/// invariant, or nil; a crash is a failure by itself.
public enum FuzzChecks {
    static let table = RouteTable([
        "/v1/{+path}", "/v1/customers/{id}", "/v1/customers/me", "/health", "/a/{x}/b/{y}",
    ].compactMap { text in
        (try? RouteTemplate(text)).map {
            RouteConfig(template: $0, method: .get, operationId: nil, handler: .staticResponse(status: 200, headers: [], body: ""),
                        inbound: [], outbound: [], location: ConfigError(file: "fuzz", message: ""))
        }
    })

    /// Path normalisation and routing: no dot segments, no control characters, no encoded
    /// separators (unless allowed), and the path forwarded routes exactly like the one received.
    public static func path(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        if let template = try? RouteTemplate(text) {
            _ = template.match(["a", "b", "c"])
            _ = template.shape
        }
        for allowEncodedSlashes in [false, true] {
            guard let segments = try? PathCoding.segments(of: text[...], allowEncodedSlashes: allowEncodedSlashes) else { continue }
            for segment in segments {
                if segment == "." || segment == ".." { return "dot segment survived normalisation: \(text.debugDescription)" }
                if segment.isEmpty { return "empty segment: \(text.debugDescription)" }
                if segment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                    return "control character survived normalisation: \(text.debugDescription)"
                }
                if !allowEncodedSlashes, segment.contains("/") || segment.contains("\\") {
                    return "an encoded separator survived normalisation: \(text.debugDescription)"
                }
            }
            // What is forwarded is what was routed: the canonical path parses back to the same
            // segments, so to the same route, and has no dot segment however it is decoded.
            let forwarded = PathCoding.canonicalPath(segments, trailingSlash: text.utf8.count > 1 && text.utf8.last == UInt8(ascii: "/"))
            // The fast path (a canonical path kept as it came) agrees with rebuilding it.
            if PathCoding.canonicalPath(of: text[...], segments: segments) != forwarded {
                return "the canonical form of \(text.debugDescription) depends on the fast path"
            }
            if PathCoding.hasDotSegment(inURL: "http://upstream" + forwarded) {
                return "the forwarded path \(forwarded.debugDescription) has a dot segment (from \(text.debugDescription))"
            }
            guard let reparsed = try? PathCoding.segments(of: forwarded[...], allowEncodedSlashes: allowEncodedSlashes) else {
                return "the forwarded path \(forwarded.debugDescription) is refused by the normaliser (from \(text.debugDescription))"
            }
            if reparsed != segments {
                return "the forwarded path \(forwarded.debugDescription) routes differently from \(text.debugDescription)"
            }
            if "\(table.match(method: .get, segments: segments))" != "\(table.match(method: .get, segments: reparsed))" {
                return "route chosen differs for \(text.debugDescription) and its forwarded form"
            }
        }
        return nil
    }

    /// What an input did, coarsely: the fuzzer keeps the first input of every distinct outcome
    /// as its corpus (Tests/Fixtures/fuzz-regressions), so the replay covers every behaviour
    /// the fuzzer reached, not only the inputs that once failed.
    public static func outcome(path bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        let template = (try? RouteTemplate(text)) != nil ? "template" : "no-template"
        let segments: [String]
        do {
            segments = try PathCoding.segments(of: text[...])
        } catch {
            return "\(template) rejected-\(error)"
        }
        switch table.match(method: .get, segments: segments) {
        case .found(_, let route, let params): return "\(template) route-\(route.template) params-\(params.count)"
        case .methodNotAllowed: return "\(template) method-not-allowed"
        case .notFound: return "\(template) not-found segments-\(min(segments.count, 4))"
        }
    }

    /// The config loader's outcome: loaded, or the first words of its first error.
    public static func outcome(config bytes: [UInt8], scratch: String) -> String {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let policies = #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound" } ] }"#
        try? Data(bytes).write(to: URL(fileURLWithPath: scratch + "/routes.oas.json"))
        try? Data(policies.utf8).write(to: URL(fileURLWithPath: scratch + "/policies.json"))
        do {
            let config = try GatewayConfig.load(directory: scratch, processEnvironment: ["X": "y"])
            return "loaded routes-\(min(config.routes.count, 3))"
        } catch {
            let message = error.errors.first.map { "\($0.message)" } ?? "?"
            return "error " + message.split(separator: " ").prefix(3).joined(separator: " ").filter { $0.isLetter || $0 == " " }
        }
    }

    /// The config loader: any bytes either load or are reported as errors, never a crash.
    public static func config(_ bytes: [UInt8], scratch: String) -> String? {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let policies = #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound" } ] }"#
        try? Data(bytes).write(to: URL(fileURLWithPath: scratch + "/routes.oas.json"))
        try? Data(policies.utf8).write(to: URL(fileURLWithPath: scratch + "/policies.json"))
        do {
            _ = try GatewayConfig.load(directory: scratch, processEnvironment: ["X": "y"])
        } catch {
            if error.errors.isEmpty { return "a failed load reported no error" }
        }
        // The same bytes through the hand-written JSON parser and the decoder it replaced.
        let parsed = try? JSONValue.parse(bytes)
        let decoded = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        if parsed != decoded {
            return "JSONValue.parse (\(parsed.map { "\($0)" } ?? "error")) differs from JSONDecoder (\(decoded.map { "\($0)" } ?? "error"))"
        }
        return nil
    }
}
