import Foundation
import GatehouseTesting
import Testing

/// Each request's task must run on its connection's event loop (where its Lua VM and its
/// upstream connections live), not on Swift's global executor.
@Suite struct LoopPinningTests {
    /// A policy that waits (`http.fetch`) and answers which VM ran it before and after the
    /// wait: the same VM (one per loop), and the upstream connection came from that loop's pool
    /// (one connection per loop at most, however many requests).
    @Test func aRequestRunsOnItsConnectionsLoopBeforeAndAfterAWait() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/where", #"{ "handler": { "type": "lua", "module": "$import(./plugins/where)" } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "plugins/where.lua": """
            local vm = tostring({}) -- module-level: one value per VM
            return function()
              local before = vm
              http.fetch(env.UPSTREAM_MAIN .. '/x')
              return Response.json({ before = before, after = vm })
            end
            """,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            for _ in 0..<20 {
                let r = try await send(gateway.baseURL + "/where")
                #expect(r.status == 200, "\(r.body)")
                #expect(r.json["before"] as? String == r.json["after"] as? String, "\(r.body)")
            }
            let stats = await gateway.server.upstreamStats()
            #expect(stats.connectionsOpened <= 2, "one pooled connection per loop: \(stats)")
        }
    }
}
