import Foundation
import GatehouseTesting
import Testing

/// `request-size-limit-inbound` and `ip-restriction-inbound` through real sockets, and their
/// option errors pointing at policies.json's line.
@Suite struct BuiltInPolicyTests {
    static let policies = #"""
    { "policies": [
      { "name": "small-bodies", "policyType": "request-size-limit-inbound", "options": { "maxSizeInBytes": 100 } },
      { "name": "office-only", "policyType": "ip-restriction-inbound", "options": { "allow": ["10.0.0.0/8", "2001:db8:1::/48"], "trustedProxies": ["127.0.0.1/32"] } },
      { "name": "no-abusers", "policyType": "ip-restriction-inbound", "options": { "deny": ["203.0.113.0/24", "2001:db8::/32"], "trustedProxies": ["127.0.0.1/32"] } },
      { "name": "peer-only", "policyType": "ip-restriction-inbound", "options": { "allow": ["192.0.2.0/24"] } }
    ] }
    """#

    static func fixture() throws -> ConfigFixture {
        let forward = #""handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        return try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("POST", "/upload", "{ " + forward + #", "policies": { "inbound": ["small-bodies"] } }"#),
                ("GET", "/office", "{ " + forward + #", "policies": { "inbound": ["office-only"] } }"#),
                ("GET", "/public", "{ " + forward + #", "policies": { "inbound": ["no-abusers"] } }"#),
                ("GET", "/peer", "{ " + forward + #", "policies": { "inbound": ["peer-only"] } }"#),
            ]),
            "config/policies.json": policies,
        ])
    }

    @Test func aRouteBodyLimitRefusesDeclaredAndStreamedBodiesOverIt() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, upstreams, _ in
            let echo = upstreams["main"]!
            let small = try await send(gateway.baseURL + "/upload", method: .POST, body: String(repeating: "a", count: 100))
            #expect(small.status == 200)
            #expect(echo.requestCount == 1)
            let large = try await send(gateway.baseURL + "/upload", method: .POST, body: String(repeating: "a", count: 101))
            #expect(large.status == 413)
            #expect(large.json["type"] as? String == "urn:gatehouse:problem:payload-too-large")
            #expect((large.json["detail"] as? String)?.contains("limit of 100 bytes") == true)
            #expect(echo.requestCount == 1, "a declared length over the limit never leaves the gateway")
            // Chunked: counted while it streams, cut off past the limit.
            let chunk = String(repeating: "b", count: 60)
            let chunked = try await RawHTTP.send(port: gateway.port, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3c\r\n\(chunk)\r\n3c\r\n\(chunk)\r\n0\r\n\r\n")
            #expect(chunked.status == 413, "\(chunked.status) \(chunked.body)")
            let fits = try await RawHTTP.send(port: gateway.port, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3c\r\n\(chunk)\r\n0\r\n\r\n")
            #expect(fits.status == 200)
        }
    }

    @Test func allowAndDenyListsJudgeTheForwardedClientBehindTrustedProxies() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture) { gateway, _, _ in
            func status(_ path: String, from address: String?) async throws -> Int {
                try await send(gateway.baseURL + path, headers: address.map { [("X-Forwarded-For", $0)] } ?? []).status
            }
            #expect(try await status("/office", from: "10.20.30.40") == 200)
            #expect(try await status("/office", from: "2001:db8:1::9") == 200)
            let outsider = try await send(gateway.baseURL + "/office", headers: [("X-Forwarded-For", "198.51.100.7")])
            #expect(outsider.status == 403)
            #expect(outsider.json["type"] as? String == "urn:gatehouse:problem:forbidden")
            #expect(!outsider.body.contains("198.51.100.7"), "the address is not echoed")
            // A client cannot prepend its way in: the rightmost untrusted entry counts.
            #expect(try await status("/office", from: "10.0.0.1, 198.51.100.7") == 403)
            // No forwarded address, or one that is no address: only the proxy is known, which an
            // allow list does not let through.
            #expect(try await status("/office", from: nil) == 403)
            #expect(try await status("/office", from: "junk") == 403)
            #expect(try await status("/office", from: "unknown, 10.0.0.7") == 200, "the rightmost untrusted entry is an address")

            #expect(try await status("/public", from: "198.51.100.7") == 200)
            #expect(try await status("/public", from: "203.0.113.9") == 403)
            #expect(try await status("/public", from: "[2001:db8::1]:443") == 403)
            #expect(try await status("/public", from: nil) == 200)
            #expect(try await status("/public", from: "junk") == 200, "a deny list judges what is known (the proxy)")
            // Without trustedProxies the header is ignored: the peer 127.0.0.1 is judged.
            #expect(try await status("/peer", from: "192.0.2.10") == 403)
        }
    }

    @Test(arguments: [
        (#"{ "name": "p", "policyType": "request-size-limit-inbound", "options": { "maxSizeInBytes": 0 } }"#, "maxSizeInBytes must be"),
        (#"{ "name": "p", "policyType": "request-size-limit-inbound" }"#, "maxSizeInBytes must be"),
        (#"{ "name": "p", "policyType": "ip-restriction-inbound", "options": {} }"#, "needs an allow or a deny list"),
        (#"{ "name": "p", "policyType": "ip-restriction-inbound", "options": { "allow": ["10.0.0.0/33"] } }"#, "holds CIDRs"),
        (#"{ "name": "p", "policyType": "ip-restriction-inbound", "options": { "deny": "10.0.0.0/8" } }"#, "is a list of CIDRs"),
        (#"{ "name": "p", "policyType": "rate-limit-inbound", "options": { "tiers": {} } }"#, "options.tiers is required"),
        (#"{ "name": "p", "policyType": "api-key-inbound", "options": { "headerName": "bad header" } }"#, "not a valid header name"),
        (#"{ "name": "p", "policyType": "api-key-inbound", "options": { "hideCredential": true } }"#, "unknown option 'hideCredential'"),
        (#"{ "name": "p", "policyType": "api-key-inbound", "options": { "hideCredentials": "true" } }"#, "hideCredentials must be true or false"),
        (#"{ "name": "p", "policyType": "jwt-inbound", "options": { "keys": [], "hidecredentials": true } }"#, "unknown option 'hidecredentials'"),
        (#"{ "name": "p", "policyType": "ip-restriction-inbound", "options": { "allow": ["10.0.0.0/8"], "trusted": [] } }"#, "unknown option 'trusted'"),
    ])
    func badOptionsAreCheckErrorsWithFileAndLine(policy: String, fragment: String) async throws {
        try await Self.expectLoadError(policy: policy, fragment: fragment)
    }

    /// Loads policy `p` alone on line 3 of policies.json: the error must contain `fragment`
    /// and point at that line.
    static func expectLoadError(policy: String, fragment: String) async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/x", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["p"] } }"#)]),
            "config/policies.json": "{ \"policies\": [\n\n  " + policy + "\n] }",
        ])
        defer { fixture.remove() }
        await #expect { try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger()) } throws: { error in
            let text = "\(error)"
            return text.contains(fragment) && text.contains("policies.json:3")
        }
    }
}

/// `set-headers-inbound` / `set-headers-outbound` and `require-user-inbound`.
@Suite struct HeaderAndUserPolicyTests {
    static func fixture() throws -> ConfigFixture {
        let forward = #""handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        let hashes = RateLimitTierTests.keyHashes
        return try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/h/{id}", "{ " + forward + #", "policies": { "inbound": ["auth", "shard", "headers-in"], "outbound": ["headers-out"] } }"#),
                ("GET", "/pro", "{ " + forward + #", "policies": { "inbound": ["auth", "paid-only"] } }"#),
            ]),
            "config/policies.json": #"""
            { "policies": [
              { "name": "auth", "policyType": "api-key-inbound", "options": { "allowUnauthenticatedRequests": true, "hideCredentials": true } },
              { "name": "shard", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/shard)" } },
              { "name": "headers-in", "policyType": "set-headers-inbound", "options": {
                  "set": { "X-Consumer": "${user.sub}", "X-Tier": "tier=${user.data.tier}", "X-Region": "${env.REGION}", "X-Shard": "${context.custom.shard}",
                           "X-Item": "${params.id}", "X-Note": "${query.note}", "X-Missing": "${headers.x-not-sent}", "X-Static": "$env(STATIC)" },
                  "append": { "Via": "1.1 gatehouse" },
                  "remove": ["X-Debug"] } },
              { "name": "headers-out", "policyType": "set-headers-outbound", "options": {
                  "set": { "Cache-Control": "no-store", "X-Served-For": "${user.sub}" }, "remove": ["Content-Language"] } },
              { "name": "paid-only", "policyType": "require-user-inbound", "options": { "match": { "data.tier": ["pro", "enterprise"] } } }
            ] }
            """#,
            "config/consumers.json": #"{ "consumers": [ { "sub": "pro-co", "keys": [ { "sha256": ""# + hashes["pro"]! + #"" } ], "metadata": { "tier": "pro" } }, "#
                + #"{ "sub": "free-co", "keys": [ { "sha256": ""# + hashes["free"]! + #"" } ], "metadata": { "tier": "free" } } ] }"#,
            "plugins/shard.lua": "return function(request, context) context.custom.shard = 's7\\r\\nX-Evil: 1'; return request end\n",
        ])
    }

    @Test func headersAreSetAppendedAndRemovedWithReferences() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture, environment: ["REGION": "eu-west", "STATIC": "from-env"]) { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/h/42?note=hello%20world", headers: [("Authorization", "Bearer sk_tier_pro"), ("X-Debug", "1"), ("Via", "1.1 edge")])
            #expect(r.status == 200)
            let seen = r.upstreamHeaders
            #expect(seen["x-consumer"] == "pro-co")
            #expect(seen["x-tier"] == "tier=pro")
            #expect(seen["x-region"] == "eu-west")
            #expect(seen["x-shard"] == "s7  X-Evil: 1", "CR LF from a reference became spaces")
            #expect(seen["x-item"] == "42")
            #expect(seen["x-static"] == "from-env")
            #expect(seen["x-note"] == "hello world")
            #expect(seen["x-evil"] == nil, "no header was smuggled in")
            #expect(seen["x-missing"] == nil, "a value whose references are all empty is not set")
            #expect(seen["x-debug"] == nil)
            #expect(seen["via"]?.contains("1.1 edge") == true && seen["via"]?.contains("1.1 gatehouse") == true)
            #expect(r.headers.first(name: "cache-control") == "no-store")
            #expect(r.headers.first(name: "x-served-for") == "pro-co")
            // Anonymous: the user references are empty, so those headers are removed, even when
            // the client sent them itself.
            let anonymous = try await send(gateway.baseURL + "/h/1", headers: [("X-Consumer", "victim"), ("X-Tier", "tier=enterprise")])
            #expect(anonymous.status == 200)
            #expect(anonymous.upstreamHeaders["x-consumer"] == nil)
            #expect(anonymous.upstreamHeaders["x-tier"] == nil)
            #expect(anonymous.headers.first(name: "x-served-for") == nil)
        }
    }

    @Test func requireUserLetsOnlyMatchingConsumersThrough() async throws {
        let fixture = try Self.fixture()
        defer { fixture.remove() }
        try await withGateway(fixture, environment: ["REGION": "x", "STATIC": "y"]) { gateway, upstreams, _ in
            #expect(try await send(gateway.baseURL + "/pro", headers: [("Authorization", "Bearer sk_tier_pro")]).status == 200)
            let free = try await send(gateway.baseURL + "/pro", headers: [("Authorization", "Bearer sk_tier_free")])
            #expect(free.status == 403)
            #expect(free.json["type"] as? String == "urn:gatehouse:problem:forbidden")
            #expect(free.json["detail"] as? String == "This consumer may not use this route.", "does not say which values would have matched")
            let anonymous = try await send(gateway.baseURL + "/pro")
            #expect(anonymous.status == 401)
            #expect(upstreams["main"]!.requestCount == 1)
        }
    }

    @Test(arguments: [
        (#"{ "name": "p", "policyType": "set-headers-inbound", "options": {} }"#, "needs set, append or remove"),
        (#"{ "name": "p", "policyType": "set-headers-inbound", "options": { "set": { "X-A": "${nope.x}" } } }"#, "unknown reference ${nope.x}"),
        (#"{ "name": "p", "policyType": "set-headers-inbound", "options": { "set": { "bad header": "v" } } }"#, "not a valid header name"),
        (#"{ "name": "p", "policyType": "set-headers-inbound", "options": { "sets": {} } }"#, "unknown option 'sets'"),
        (#"{ "name": "p", "policyType": "require-user-inbound", "options": { "match": {} } }"#, "options.match is required"),
        (#"{ "name": "p", "policyType": "require-user-inbound", "options": { "match": { "data..tier": "x" } } }"#, "not a dotted path"),
    ])
    func badOptionsAreLoadErrorsWithTheLine(policy: String, fragment: String) async throws {
        try await BuiltInPolicyTests.expectLoadError(policy: policy, fragment: fragment)
    }
}
