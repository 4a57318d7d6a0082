import Foundation
import GatehouseTesting
import Testing

/// CORS by named policies (`corsPolicies` + `x-gatehouse-route.corsPolicy`), checked against
/// the Fetch standard's rules: preflights answered by the gateway (no policy, no upstream),
/// actual answers carrying the allow headers, refusals carrying none.
@Suite struct CORSTests {
    static func fixture() throws -> ConfigFixture {
        let forward = #""handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        return try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/api/items", "{ " + forward + #", "corsPolicy": "app", "policies": { "inbound": ["auth"] } }"#),
                ("POST", "/api/items", "{ " + forward + #", "corsPolicy": "app", "policies": { "inbound": ["auth"] } }"#),
                ("GET", "/open", "{ " + forward + #", "corsPolicy": "anything-goes" }"#),
                ("GET", "/public", "{ " + forward + #", "corsPolicy": "public" }"#),
                ("GET", "/plain", "{ " + forward + " }"),
            ]),
            "config/policies.json": #"""
            { "corsPolicies": [
                { "name": "app", "allowedOrigins": ["https://app.example.com", "https://*.example.org"], "allowedMethods": ["GET", "POST"],
                  "allowedHeaders": ["Content-Type", "Authorization"], "exposeHeaders": ["X-Request-Id"], "allowCredentials": true, "maxAge": 600 },
                { "name": "public", "allowedOrigins": ["*"], "allowedMethods": ["GET"] }
              ],
              "policies": [ { "name": "auth", "policyType": "api-key-inbound" } ] }
            """#,
            "config/consumers.json": #"{ "consumers": [ { "sub": "pro-co", "keys": [ { "sha256": ""# + RateLimitTierTests.keyHashes["pro"]! + #"" } ] } ] }"#,
        ])
    }

    func preflight(_ gateway: TestGateway, _ path: String, origin: String, method: String, headers: String? = nil) async throws -> Reply {
        var fields = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if let headers { fields.append(("Access-Control-Request-Headers", headers)) }
        return try await send(gateway.baseURL + path, method: .OPTIONS, headers: fields)
    }

    @Test func preflightsAreAnsweredByTheGatewayAsFetchRequires() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in
            let ok = try await preflight(gateway, "/api/items", origin: "https://app.example.com", method: "POST", headers: "content-type, authorization")
            #expect(ok.status == 204, "no API key needed: the preflight never reaches the policies")
            #expect(ok.headers.first(name: "access-control-allow-origin") == "https://app.example.com", "credentials: the origin, never *")
            #expect(ok.headers.first(name: "access-control-allow-credentials") == "true")
            #expect(ok.headers.first(name: "access-control-allow-methods") == "GET, POST")
            #expect(ok.headers.first(name: "access-control-allow-headers") == "content-type, authorization")
            #expect(ok.headers.first(name: "access-control-max-age") == "600")
            #expect(ok.headers.first(name: "vary")?.contains("Origin") == true)
            // Wildcard subdomains: one or more labels, same scheme, never the bare domain.
            #expect(try await preflight(gateway, "/api/items", origin: "https://a.b.example.org", method: "GET").status == 204)
            for refused in ["https://example.org", "http://a.example.org", "https://evil.com", "https://app.example.com.evil.com", "null"] {
                let r = try await preflight(gateway, "/api/items", origin: refused, method: "GET")
                #expect(r.status == 403, "\(refused)")
                #expect(r.headers.first(name: "access-control-allow-origin") == nil, "\(refused)")
            }
            // A header or method the policy does not list fails the preflight.
            #expect(try await preflight(gateway, "/api/items", origin: "https://app.example.com", method: "POST", headers: "x-secret").status == 403)
            #expect(try await preflight(gateway, "/api/items", origin: "https://app.example.com", method: "DELETE").status == 405, "no DELETE route: not a CORS matter")
            // Routes without a policy have no CORS: the OPTIONS is an ordinary request.
            #expect(try await preflight(gateway, "/plain", origin: "https://app.example.com", method: "GET").status == 405)
            #expect(upstreams["main"]!.requestCount == 0)
        }
    }

    @Test func actualAnswersCarryTheAllowHeadersWhoeverAnswered() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            let ok = try await send(gateway.baseURL + "/api/items", headers: [("Origin", "https://app.example.com"), ("Authorization", "Bearer sk_tier_pro")])
            #expect(ok.status == 200)
            #expect(ok.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
            #expect(ok.headers.first(name: "access-control-allow-credentials") == "true")
            #expect(ok.headers.first(name: "access-control-expose-headers") == "x-request-id")
            #expect(ok.headers["vary"].joined(separator: ",").contains("Origin"))
            // A problem from a policy is readable by the page too.
            let unauthorized = try await send(gateway.baseURL + "/api/items", headers: [("Origin", "https://app.example.com")])
            #expect(unauthorized.status == 401)
            #expect(unauthorized.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
            // Another origin: served (CORS is the browser's to enforce) but without the headers.
            let other = try await send(gateway.baseURL + "/api/items", headers: [("Origin", "https://evil.com"), ("Authorization", "Bearer sk_tier_pro")])
            #expect(other.status == 200)
            #expect(other.headers.first(name: "access-control-allow-origin") == nil)
            // Without an Origin: no allow headers, but Vary: Origin for caches.
            let noOrigin = try await send(gateway.baseURL + "/api/items", headers: [("Authorization", "Bearer sk_tier_pro")])
            #expect(noOrigin.headers.first(name: "access-control-allow-origin") == nil)
            #expect(noOrigin.headers["vary"].joined(separator: ",").contains("Origin"))
            // A public policy without credentials answers *, but not to `null`.
            let open = try await send(gateway.baseURL + "/public", headers: [("Origin", "https://anyone.test")])
            #expect(open.headers.first(name: "access-control-allow-origin") == "*")
            #expect(open.headers.first(name: "access-control-allow-credentials") == nil)
            #expect(try await send(gateway.baseURL + "/public", headers: [("Origin", "null")]).headers.first(name: "access-control-allow-origin") == nil)
            // anything-goes reflects whatever is asked.
            let dev = try await preflight(gateway, "/open", origin: "http://localhost:3000", method: "GET", headers: "x-anything")
            #expect(dev.status == 204)
            #expect(dev.headers.first(name: "access-control-allow-origin") == "http://localhost:3000")
            #expect(dev.headers.first(name: "access-control-allow-headers") == "x-anything")
            #expect(dev.headers.first(name: "access-control-allow-methods") == "GET")
        }
    }

    @Test(arguments: [
        (#""corsPolicy": "missing""#, "{ \"policies\": [] }", "unknown CORS policy 'missing'"),
        (#""corsPolicy": "c""#, #"{ "corsPolicies": [ { "name": "c", "allowedOrigins": ["https://a.test/path"] } ], "policies": [] }"#, "is not an origin"),
        (#""corsPolicy": "c""#, #"{ "corsPolicies": [ { "name": "c" } ], "policies": [] }"#, "needs allowedOrigins"),
        (#""corsPolicy": "c""#, #"{ "corsPolicies": [ { "name": "c", "allowedOrigins": ["*"], "allowedMethods": ["G ET"] } ], "policies": [] }"#, "not an HTTP method"),
        (#""corsPolicy": "c""#, #"{ "corsPolicies": [ { "name": "c", "allowedOrigins": ["*"], "credentials": true } ], "policies": [] }"#, "unknown CORS option 'credentials'"),
        (#""corsPolicy": "c""#, #"{ "corsPolicies": [ { "name": "c", "allowedOrigins": ["*"], "allowCredentials": true } ], "policies": [] }"#, "would let every site read"),
    ])
    func badCORSConfigurationIsALoadError(route: String, policies: String, fragment: String) async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static" }, "# + route + " }")]),
            "config/policies.json": policies,
        ])
        defer { fixture.remove() }
        await #expect { try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger()) } throws: { error in
            "\(error)".contains(fragment)
        }
    }
}
