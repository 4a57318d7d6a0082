import Foundation
import GatehousePolicies
import GatehouseTesting
import Testing

/// `rate-limit-inbound` through real sockets, with a manual clock (the test moves time; it
/// never sleeps past a limit).
@Suite struct RateLimitTests {
    static let consumers = #"""
    { "consumers": [
      { "sub": "free-co", "keys": [ { "sha256": "5387b84ae2b03f925ca0a22b82ae7565258aa97654a6c95134002e93af138397" } ], "metadata": { "tier": "free" } },
      { "sub": "pro-co", "keys": [ { "sha256": "86ca45f0cf3d5d819a65e84a8ff57122ad00d2ae64841ca326b23542d3aaae90" } ], "metadata": { "tier": "pro" } },
      { "sub": "other-free", "keys": [ { "sha256": "e898721269cc16b53a7301da03e48ce365f2bc26ef47ddcd21f2e6a04c386094" } ], "metadata": {} }
    ] }
    """#
    static let tiers = #"""
    "tiers": { "free": { "rpm": 100, "burst": 10 }, "starter": { "rpm": 1000, "burst": 50 },
               "pro": { "rpm": 10000, "burst": 200 }, "enterprise": { "rpm": 100000, "burst": 1000 } }
    """#

    func withLimitedGateway(_ body: (TestGateway, ServiceClock, ConfigFixture) async throws -> Void) async throws {
        let clock = ServiceClock.manual()
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/api/x", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["auth", "limit"] } }"#),
                ("GET", "/ip", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["by-ip"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound" }, { "name": "limit", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "user", "tierFrom": "data.tier", "defaultTier": "free", "# + Self.tiers + #" } }, { "name": "by-ip", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "ip", "trustedProxies": ["127.0.0.1/32"], "tiers": { "anonymous": { "rpm": 60, "burst": 2 } } } } ] }"#,
            "config/consumers.json": Self.consumers,
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger(), clock: clock)
        do {
            try await body(gateway, clock, fixture)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    func call(_ gateway: TestGateway, _ key: String) async throws -> Reply {
        try await send(gateway.baseURL + "/api/x", headers: [("Authorization", "Bearer \(key)")])
    }

    @Test func theFreeTierAllowsItsBurstThenRefusesWith429() async throws {
        try await withLimitedGateway { gateway, clock, _ in
            for i in 0..<10 {
                let r = try await call(gateway, "sk_free_tenant")
                #expect(r.status == 200, "request \(i)")
                #expect(r.headers["ratelimit-limit"].first == "10")
                #expect(r.headers["ratelimit-remaining"].first == String(9 - i))
                #expect(r.headers["ratelimit-policy"].first == "100;w=60;burst=10")
            }
            let refused = try await call(gateway, "sk_free_tenant")
            #expect(refused.status == 429)
            #expect(refused.json["type"] as? String == "urn:gatehouse:problem:rate-limited")
            #expect((refused.json["detail"] as? String)?.contains("'free' tier") == true)
            #expect(!refused.body.contains("free-co") && !refused.body.contains("sk_free"), "names the limit, never the key")
            #expect(refused.headers["retry-after"].first == "1")
            #expect(refused.headers["ratelimit-remaining"].first == "0")
            // Other tenants are not affected; a consumer without a tier gets the default.
            #expect(try await call(gateway, "sk_other_free").status == 200)
            // One interval later, exactly one more.
            clock.advance(by: .milliseconds(600))
            #expect(try await call(gateway, "sk_free_tenant").status == 200)
            #expect(try await call(gateway, "sk_free_tenant").status == 429)
        }
    }

    @Test func theProTierFromAPIKeyMetadataHasItsOwnBurst() async throws {
        try await withLimitedGateway { gateway, _, _ in
            var passed = 0
            for _ in 0..<210 {
                if try await call(gateway, "sk_pro_tenant").status == 200 { passed += 1 }
            }
            #expect(passed == 200)
        }
    }

    @Test func aReloadDoesNotResetACounter() async throws {
        try await withLimitedGateway { gateway, _, fixture in
            for _ in 0..<10 { _ = try await call(gateway, "sk_free_tenant") }
            #expect(try await call(gateway, "sk_free_tenant").status == 429)
            // A new generation (the policy's options unchanged, another route added).
            try fixture.write("config/routes.oas.json", ConfigFixture.routes([
                ("GET", "/api/x", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["auth", "limit"] } }"#),
                ("GET", "/ip", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["by-ip"] } }"#),
                ("GET", "/new", #"{ "handler": { "type": "static" } }"#),
            ]))
            guard case .success(let generation) = await gateway.reloader.reload(reason: "test") else { Issue.record("reload failed"); return }
            #expect(generation == 2)
            #expect(try await call(gateway, "sk_free_tenant").status == 429, "still limited after the reload")
        }
    }

    @Test func byIPBelievesXForwardedForOnlyFromTrustedProxies() async throws {
        try await withLimitedGateway { gateway, _, _ in
            func ip(_ forwarded: String) async -> Int {
                (try? await send(gateway.baseURL + "/ip", headers: [("X-Forwarded-For", forwarded)]).status) ?? -1
            }
            // The test client is 127.0.0.1, a trusted proxy: the forwarded address is the key.
            #expect(await ip("203.0.113.9") == 200)
            #expect(await ip("203.0.113.9") == 200)
            #expect(await ip("203.0.113.9") == 429)
            #expect(await ip("198.51.100.7") == 200, "another client has its own bucket")
            // The rightmost untrusted entry counts, whatever a client prepends.
            #expect(await ip("1.2.3.4, 198.51.100.7") == 200)
            #expect(await ip("5.6.7.8, 198.51.100.7") == 429)
            // A proxy that writes a port (or brackets) names the same client.
            #expect(await ip("192.0.2.44:5678") == 200)
            #expect(await ip("192.0.2.44:6789") == 200)
            #expect(await ip("192.0.2.44") == 429, "one bucket for 192.0.2.44 whatever the port")
            #expect(await ip("[2001:db8::7]:443") == 200)
            #expect(await ip("2001:db8:0::7") == 200)
            #expect(await ip("[2001:db8::7]") == 429)
        }
    }

    @Test func badOptionsAreLoadErrors() async throws {
        for (options, fragment) in [
            (#"{ "tiers": {} }"#, "options.tiers is required"),
            (#"{ "tiers": { "a": { "rpm": 0 } } }"#, "rpm must be"),
            (#"{ "tiers": { "a": { "rpm": 1 }, "b": { "rpm": 2 } } }"#, "defaultTier must name"),
            (#"{ "rateLimitBy": "header", "tiers": { "a": { "rpm": 1 } } }"#, "needs options.headerName"),
            (#"{ "mode": "redis", "tiers": { "a": { "rpm": 1 } } }"#, "Redis"),
            (#"{ "trustedProxies": ["10.0.0.0/99"], "tiers": { "a": { "rpm": 1 } } }"#, "CIDRs"),
            (#"{ "trustedProxies": [""], "tiers": { "a": { "rpm": 1 } } }"#, "CIDRs"),
            (#"{ "trustedProxies": ["/"], "tiers": { "a": { "rpm": 1 } } }"#, "CIDRs"),
            (#"{ "trustedProxies": ["10.0.0.0/"], "tiers": { "a": { "rpm": 1 } } }"#, "CIDRs"),
            (#"{ "tiers": { "a": { "rpm": 1, "burst": 2000000 } } }"#, "burst must be"),
        ] {
            let fixture = try ConfigFixture(files: [
                "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["limit"] } }"#)]),
                "config/policies.json": #"{ "policies": [ { "name": "limit", "policyType": "rate-limit-inbound", "options": "# + options + " } ] }",
            ])
            defer { fixture.remove() }
            do {
                let g = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger())
                try await g.stop()
                Issue.record("\(options) loaded")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
    }
}

/// `ratelimit.check` from Lua: the same store, its own key space.
@Suite struct LuaRateLimitTests {
    @Test func aScriptLimitsByItsOwnKey() async throws {
        let clock = ServiceClock.manual()
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/export", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["exports"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "exports", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/exports)" } } ] }"#,
            "plugins/exports.lua": """
            return function(request, context)
              local ok, remaining, wait = ratelimit.check("t:" .. (request.query.t or "-"), { rpm = 60, burst = 2 })
              if not ok then
                local refusal = problems.tooManyRequests(request, context, { detail = "slow down" })
                refusal.headers:set("retry-after", tostring(wait))
                return refusal
              end
              request.headers:set("x-remaining", tostring(remaining))
              return request
            end
            """,
        ])
        defer { fixture.remove() }
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger(), clock: clock)
        do {
            #expect(try await send(gateway.baseURL + "/export?t=a").status == 200)
            #expect(try await send(gateway.baseURL + "/export?t=a").status == 200)
            let refused = try await send(gateway.baseURL + "/export?t=a")
            #expect(refused.status == 429)
            #expect(refused.headers["retry-after"].first == "1")
            #expect(try await send(gateway.baseURL + "/export?t=b").status == 200)
            clock.advance(by: .seconds(1))
            #expect(try await send(gateway.baseURL + "/export?t=a").status == 200)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }
}

/// `rateLimitBy: "function"`: a Lua export picks the tenant and its tier or its own limit; nil
/// exempts a request; anything else is a policy error naming the file and line.
@Suite struct RateLimitKeyFunctionTests {
    @Test func aKeyFunctionPicksTheTenantTierOrLimit() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static", "options": { "body": "ok" } }, "policies": { "inbound": ["limit"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "limit", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "function", "identifier": { "module": "$import(./plugins/tenant-key)", "export": "rateLimitKey" }, "defaultTier": "free", "tiers": { "free": { "rpm": 60, "burst": 2 }, "pro": { "rpm": 60, "burst": 4 } } } } ] }"#,
            "plugins/tenant-key.lua": """
            return {
              rateLimitKey = function(request, context, policyName)
                local tenant = request.query.tenant
                if tenant == "internal" then return nil end
                if tenant == "vip" then return { key = tenant, requestsPerMinute = 60, burst = 6 } end
                if tenant == "wrong" then return "a string" end
                if tenant == "crash" then error("no tenant service") end
                return { key = tenant or "anonymous", tier = request.query.plan, policy = policyName }
              end,
            }
            """,
        ])
        defer { fixture.remove() }
        let logs = LogCapture()
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: logs.logger(), clock: .manual())
        do {
            func passes(_ query: String, _ total: Int) async throws -> Int {
                var passed = 0
                for _ in 0..<total where try await send(gateway.baseURL + "/x?" + query).status == 200 { passed += 1 }
                return passed
            }
            #expect(try await passes("tenant=acme", 5) == 2, "the default tier")
            #expect(try await passes("tenant=globex&plan=pro", 6) == 4, "the tier the function named")
            #expect(try await passes("tenant=vip", 8) == 6, "the function's own limit")
            #expect(try await passes("tenant=internal", 20) == 20, "nil: not limited")
            let refused = try await send(gateway.baseURL + "/x?tenant=vip")
            #expect(refused.status == 429)
            #expect((refused.json["detail"] as? String)?.contains("60 requests per minute, bursts of 6") == true)
            for bad in ["wrong", "crash", "acme&plan=platinum"] {
                let reply = try await send(gateway.baseURL + "/x?tenant=" + bad)
                #expect(reply.status == 500, "\(bad)")
                #expect(reply.json["type"] as? String == "urn:gatehouse:problem:policy-error")
            }
            #expect(logs.all.contains { $0.message.contains("no tenant service") && $0.metadata["file"]?.contains("tenant-key.lua") == true && $0.metadata["line"] == "7" })
            #expect(logs.all.contains { $0.message.contains("must return a table") })
            #expect(logs.all.contains { $0.message.contains("platinum") && $0.message.contains("not one of free, pro") })
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    @Test func aMissingIdentifierIsALoadError() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["limit"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "limit", "policyType": "rate-limit-inbound", "options": { "rateLimitBy": "function", "tiers": { "a": { "rpm": 1 } } } } ] }"#,
        ])
        defer { fixture.remove() }
        await #expect { try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger()) } throws: { error in
            "\(error)".contains("needs options.identifier")
        }
    }
}
