import Foundation
import GatehousePolicies
import GatehouseTesting
import Logging
import NIOPosix
import Testing

/// One plugin file, many deployments: declared options validated per use, with defaults.
@Suite struct PluginSharingTests {
    static let plugin = """
        return {
          name = "tiered",
          version = "2.1.0",
          options = {
            tier = { type = "string", enum = { "free", "pro" }, default = "free", description = "pricing tier" },
            limit = { type = "integer", required = true, description = "requests per minute" },
          },
          inbound = function(request, context, options)
            return Response.json({ tier = options.tier, limit = options.limit })
          end,
        }
        """

    func load(options: String) async throws(SnapshotError) -> Snapshot {
        let fixture = try! ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/t", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["t"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "t", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/tiered)" }, "options": "# + options + " } ] }",
            "plugins/tiered.lua": Self.plugin,
        ])
        defer { fixture.remove() }
        return try await Snapshot.load(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            loops: [MultiThreadedEventLoopGroup.singleton.next()], generation: 1, logger: Logger(label: "test"))
    }

    @Test(arguments: [
        (#"{ "tier": "pro" }"#, "options.limit is required (requests per minute)"),
        (#"{ "limit": 10, "tier": "gold" }"#, #"options.tier must be one of "free", "pro""#),
        (#"{ "limit": "ten" }"#, "options.limit must be an integer, found string"),
        (#"{ "limit": 10, "tierr": "pro" }"#, "options.tierr is not an option of this policy"),
    ])
    func invalidOptionsAreRefusedAtLoadNamingThePolicyAndTheOption(options: String, message: String) async {
        do {
            _ = try await load(options: options)
            Issue.record("expected a load error")
        } catch {
            #expect(error.description.contains("policy 't'"))
            #expect(error.description.contains(message), "\(error.description)")
            #expect(error.description.contains("policies.json"))
        }
    }

    @Test func defaultsAreAppliedAndMetadataIsListed() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/t", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["t"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "t", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/tiered)" }, "options": { "limit": 60 } } ] }"#,
            "plugins/tiered.lua": Self.plugin,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/t")
            #expect(r.json["tier"] as? String == "free")
            #expect(r.json["limit"] as? Int == 60)
            let info = gateway.server.store.current.plugins.first { $0.file == "plugins/tiered.lua" }
            #expect(info?.name == "tiered")
            #expect(info?.version == "2.1.0")
            #expect(info?.sha256.count == 64)
        }
    }
}
