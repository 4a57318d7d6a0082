// gatehouse-fuzz: a standalone mutation fuzzer for the path normaliser / route table and the
// config loader. Usage: gatehouse-fuzz [seconds] [seed] [--corpus]
//
// With --corpus it also saves the first input of every outcome it had not seen before (see
// FuzzChecks.outcome) into Tests/Fixtures/fuzz-regressions/, so the replay test covers what
// the fuzzer reached.
//
// Before each input it writes the input to fuzz-current-input so that a crash leaves its
// reproducer behind (CI prints it; copy it into Tests/Fixtures/fuzz-regressions/<target>-<name>
// to keep it as a regression test). An invariant violation is saved there directly and exits 1.
import Foundation
import GatehouseTesting

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let saveCorpus = CommandLine.arguments.contains("--corpus")
let arguments = CommandLine.arguments.filter { $0 != "--corpus" }
let seconds = arguments.count > 1 ? Double(arguments[1]) ?? 30 : 30
let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : UInt64(Date().timeIntervalSince1970)
var random = SplitMix64(state: seed)
print("gatehouse-fuzz: \(seconds) s, seed \(seed)")

let pathSeeds: [[UInt8]] = [
    "/v1/customers/42", "/v1/%2e%2e/x", "//a///b/", "/v1/a%20b/c", "/a/%00", "/%ZZ", "/v1/{+path}", "/a/{x}/b/{y}",
    "/v1/customers/me?x=1", "/\u{00e9}/%C3%A9", "/v1/..%2F..%2Fadmin", "/public\\..\\admin", "/a/%252e%252e/b", "//admin//x/",
].map { Array($0.utf8) }
let configSeeds: [[UInt8]] = [
    #"{ "openapi": "3.1.0", "paths": { "/v1/{+path}": { "get": { "x-gatehouse-route": { "handler": { "type": "url-rewrite", "options": { "rewritePattern": "$env(X)/${params.path}?q=${query.q}" } }, "policies": { "inbound": ["auth"] } } } } } }"#,
    #"{ "paths": { "/a/{x}": { "post": { "x-gatehouse-route": { "handler": { "type": "static", "options": { "status": 201, "headers": { "a": "b" }, "body": { "k": [1, 2.5, null, true] } } } } } } } }"#,
    "paths:\n  /x:\n    get:\n      x-gatehouse-route:\n        handler: { type: url-forward, options: { baseUrl: 'http://h' } }\n",
].map { Array($0.utf8) }
let interesting: [[UInt8]] = ["%", "%2e", "%2F", "%2f", "%5C", "\\", "%25", "%C0%AE", "/", "..", ".", "{", "}", "{+", "\0", "\r\n", "\"", "$env(", "${", "[", "]", ":", "\u{FFFF}", "&&", "*", "!"]
    .map { Array($0.utf8) }

@MainActor func mutate(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...4, using: &random) {
        switch Int.random(in: 0..<5, using: &random) {
        case 0 where !bytes.isEmpty: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
        case 1: bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
        case 2 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        case 3: bytes.insert(contentsOf: interesting.randomElement(using: &random)!, at: Int.random(in: 0...bytes.count, using: &random))
        default:
            if bytes.count > 2 {
                let a = Int.random(in: 0..<bytes.count, using: &random), b = Int.random(in: a..<bytes.count, using: &random)
                bytes.insert(contentsOf: bytes[a..<b], at: Int.random(in: 0...bytes.count, using: &random))
            }
        }
    }
    return Array(bytes.prefix(8192))
}

let current = URL(fileURLWithPath: "fuzz-current-input")
let scratch = NSTemporaryDirectory() + "gatehouse-fuzz-\(getpid())"
let deadline = Date().addingTimeInterval(seconds)
var runs = (path: 0, config: 0)
var violations = 0
let corpusDirectory = "Tests/Fixtures/fuzz-regressions"
var seenOutcomes = Set<String>()
if saveCorpus {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: corpusDirectory)) ?? [] where name.hasPrefix("path-") || name.hasPrefix("config-") {
        let bytes = Array(FileManager.default.contents(atPath: corpusDirectory + "/" + name) ?? Data())
        seenOutcomes.insert(name.hasPrefix("path-") ? "path " + FuzzChecks.outcome(path: bytes) : "config " + FuzzChecks.outcome(config: bytes, scratch: scratch))
    }
}
var saved = 0
while Date() < deadline {
    let fuzzPath = Int.random(in: 0..<10, using: &random) < 8 // the path target is cheap: most runs
    let input = mutate((fuzzPath ? pathSeeds : configSeeds).randomElement(using: &random)!)
    try? Data((fuzzPath ? "path\n" : "config\n").utf8 + input).write(to: current)
    let violation = fuzzPath ? FuzzChecks.path(input) : FuzzChecks.config(input, scratch: scratch)
    if fuzzPath { runs.path += 1 } else { runs.config += 1 }
    if saveCorpus {
        let outcome = fuzzPath ? "path " + FuzzChecks.outcome(path: input) : "config " + FuzzChecks.outcome(config: input, scratch: scratch)
        if seenOutcomes.insert(outcome).inserted {
            saved += 1
            let name = "\(corpusDirectory)/\(fuzzPath ? "path" : "config")-corpus-\(seed)-\(saved)"
            try? Data(input).write(to: URL(fileURLWithPath: name))
        }
    }
    if let violation {
        violations += 1
        let name = "Tests/Fixtures/fuzz-regressions/\(fuzzPath ? "path" : "config")-\(seed)-\(violations)"
        try? Data(input).write(to: URL(fileURLWithPath: name))
        print("violation: \(violation)\n  saved as \(name)")
    }
}
try? FileManager.default.removeItem(at: current)
try? FileManager.default.removeItem(atPath: scratch)
print("gatehouse-fuzz: \(runs.path) path inputs, \(runs.config) config inputs, \(violations) violations\(saveCorpus ? ", \(saved) new corpus inputs" : "")")
exit(violations == 0 ? 0 : 1)
