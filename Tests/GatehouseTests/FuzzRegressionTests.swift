import Foundation
import GatehouseTesting
import Testing

/// Replays every input the fuzzer ever saved (Tests/Fixtures/fuzz-regressions), plus the seeds.
@Suite struct FuzzRegressionTests {
    @Test func savedInputsKeepPassing() throws {
        let directory = ConfigFixture.repositoryRoot() + "/Tests/Fixtures/fuzz-regressions"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let scratch = NSTemporaryDirectory() + "gatehouse-fuzz-replay-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let saved = names.filter { !$0.hasPrefix(".") && $0 != "README.md" }
        // The corpus is what the fuzzer reached (gatehouse-fuzz --corpus): an empty directory
        // would make this replay pass without checking anything.
        #expect(saved.filter { $0.hasPrefix("path-") }.count >= 10, "the path corpus is missing")
        #expect(saved.filter { $0.hasPrefix("config-") }.count >= 5, "the config corpus is missing")
        for name in saved {
            let bytes = Array(FileManager.default.contents(atPath: directory + "/" + name) ?? Data())
            let violation = name.hasPrefix("config") ? FuzzChecks.config(bytes, scratch: scratch) : FuzzChecks.path(bytes)
            #expect(violation == nil, "\(name): \(violation ?? "")")
        }
        for path in ["/a/%2e%2E/b", "/%2e", "/a/.%2e/b", "/a/%00b", "/\u{7F}", "//", "/a/b/../c",
                     "/v1/..%2F..%2Fadmin", "/v1/%2e%2e%2fother", "/public\\..\\admin", "/a/%252e%252e/b", "//admin//secret//", "/a%2Fb/%5c"] {
            #expect(FuzzChecks.path(Array(path.utf8)) == nil, "\(path)")
        }
    }
}
