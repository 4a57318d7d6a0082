import Foundation
import GatehouseTesting
import Testing

/// Each example's README flow, live.
@Suite struct ExampleTests {
    @Test func environmentRoutingExampleFlow() async throws {
        let root = ConfigFixture.repositoryRoot()
        let example = root + "/examples/environment-routing"
        let sandbox = try await RunningUpstream.start(name: "sandbox")
        let production = try await RunningUpstream.start(name: "production")
        let gateway = try await TestGateway.start(
            configDirectory: example + "/config", pluginDirectories: [example + "/plugins", root + "/plugins"],
            environment: ["SANDBOX_URL": sandbox.url, "PRODUCTION_URL": production.url], logger: LogCapture().logger())
        func call(_ key: String?) async throws -> Reply {
            try await send(gateway.baseURL + "/v1/charges", headers: key.map { [("Authorization", "Bearer \($0)")] } ?? [])
        }
        let test = try await call("sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc")
        #expect(test.json["upstream"] as? String == "sandbox")
        #expect(test.json["path"] as? String == "/charges")
        let live = try await call("sk_live_demo_9xK2mQ7vLp3RtY8wZ5nB1cHd")
        #expect(live.json["upstream"] as? String == "production")
        let misfiled = try await call("sk_test_demo_misfiled_Zx8Cv6Bn4Mm2")
        #expect(misfiled.status == 403)
        #expect(misfiled.json["detail"] as? String == "A sk_test_… key cannot be used against the production environment.")
        let anonymous = try await call(nil)
        #expect(anonymous.status == 401)
        #expect(sandbox.requestCount == 1)
        #expect(production.requestCount == 1)
        try await gateway.stop()
        try await sandbox.stop()
        try await production.stop()
    }
}
