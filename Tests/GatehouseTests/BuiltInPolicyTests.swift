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
            // No forwarded address: the peer (127.0.0.1), not in the allow list.
            #expect(try await status("/office", from: nil) == 403)

            #expect(try await status("/public", from: "198.51.100.7") == 200)
            #expect(try await status("/public", from: "203.0.113.9") == 403)
            #expect(try await status("/public", from: "[2001:db8::1]:443") == 403)
            #expect(try await status("/public", from: nil) == 200)
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
    ])
    func badOptionsAreCheckErrorsWithFileAndLine(policy: String, fragment: String) async throws {
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
