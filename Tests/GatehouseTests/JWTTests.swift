import Foundation
import GatehousePolicies
import GatehouseTesting
import Testing

/// jwt-inbound against tokens minted by Python's joserfc/cryptography (Tests/Fixtures/jwt).
@Suite struct JWTTests {
    static let fixtures = ConfigFixture.repositoryRoot() + "/Tests/Fixtures/jwt"
    static let tokens: [String: String] = {
        let data = FileManager.default.contents(atPath: fixtures + "/tokens.json")!
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return json["tokens"] as! [String: String]
    }()
    static let secret = "gatehouse-test-hmac-secret-0123456789abcdef-0123456789abcdef-64bytes"

    static func pem(_ name: String) -> String {
        (try? String(contentsOfFile: fixtures + "/keys/\(name).pem", encoding: .utf8)) ?? ""
    }

    static func project() throws -> ConfigFixture {
        let claims = #""issuer": "https://issuer.test", "audience": "gatehouse-tests""#
        let keys = ["HS256", "HS384", "HS512"].map { #"{ "alg": ""# + $0 + #"", "secret": "$env(JWT_SECRET)" }"# }
            + ["RS256", "RS384", "RS512", "PS256"].map { #"{ "alg": ""# + $0 + #"", "pem": "$env(RSA_PEM)" }"# }
            + [#"{ "alg": "ES256", "pem": "$env(EC256_PEM)" }"#, #"{ "alg": "ES384", "pem": "$env(EC384_PEM)" }"#, #"{ "alg": "EdDSA", "pem": "$env(ED25519_PEM)" }"#]
        return try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/all", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["jwt-all", "whoami"] } }"#),
                ("GET", "/jwks", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["jwt-jwks", "whoami"] } }"#),
                ("GET", "/cookie", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["jwt-cookie", "whoami"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": ["#
                + #"{ "name": "jwt-all", "policyType": "jwt-inbound", "options": { "keys": ["# + keys.joined(separator: ",") + "], " + claims + " } },"
                + #"{ "name": "jwt-jwks", "policyType": "jwt-inbound", "options": { "jwksUrl": "$env(JWKS_URL)", "jwksCacheSeconds": 1, "jwksRefreshIntervalSeconds": 60, "# + claims + " } },"
                + #"{ "name": "jwt-cookie", "policyType": "jwt-inbound", "options": { "cookieName": "session", "keys": [ { "alg": "HS256", "secret": "$env(JWT_SECRET)" } ], "# + claims + " } },"
                + #"{ "name": "whoami", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/whoami)" } }"#
                + "] }",
            "plugins/whoami.lua": "return function(request)\n  return Response.json({ sub = request.user.sub, tenant = request.user.data.tenant_id })\nend\n",
        ])
    }

    func withJWTGateway(clock: ServiceClock = .system, _ body: (TestGateway, RunningDataService, LogCapture) async throws -> Void) async throws {
        let fixture = try Self.project()
        defer { fixture.remove() }
        let jwks = try await RunningDataService.start(directory: Self.fixtures, environment: [:])
        let logs = LogCapture()
        let gateway = try await TestGateway.start(
            configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory],
            environment: [
                "JWT_SECRET": Self.secret, "RSA_PEM": Self.pem("rsa"), "EC256_PEM": Self.pem("ec256"), "EC384_PEM": Self.pem("ec384"),
                "ED25519_PEM": Self.pem("ed25519"), "JWKS_URL": jwks.url + "/records/jwks/set",
            ],
            logger: logs.logger(), clock: clock)
        do {
            try await body(gateway, jwks, logs)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
        try? await jwks.stop()
    }

    func call(_ gateway: TestGateway, _ path: String, token: String) async throws -> Reply {
        try await send(gateway.baseURL + path, headers: [("Authorization", "Bearer \(token)")])
    }

    @Test(arguments: ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"])
    func everyAlgorithmVerifiesAndSetsTheUser(_ alg: String) async throws {
        try await withJWTGateway { gateway, _, _ in
            let r = try await call(gateway, "/all", token: Self.tokens[alg]!)
            #expect(r.status == 200, "\(alg): \(r.body)")
            #expect(r.json["sub"] as? String == "user-42")
            #expect(r.json["tenant"] as? String == "acme")
        }
    }

    @Test(arguments: [
        ("wrong_signature", "The token's signature is not valid."),
        ("expired", "The token has expired."),
        ("not_yet_valid", "The token is not valid yet."),
        ("wrong_issuer", "The token's issuer is not accepted."),
        ("wrong_audience", "The token's audience is not accepted."),
        ("alg_none", "The token's signing algorithm is not accepted."),
        ("hs_rs_confusion", "The token's signature is not valid."),
        // Validly signed, but `crit` names an extension the gateway does not implement.
        ("crit_extension", "The token requires an extension the gateway does not support (crit)."),
        ("crit_b64", "The token requires an extension the gateway does not support (crit)."),
        ("crit_empty", "The token requires an extension the gateway does not support (crit)."),
        ("crit_absent_parameter", "The token requires an extension the gateway does not support (crit)."),
    ])
    func badTokensAre401WithAReasonAndNeverEchoed(_ name: String, _ detail: String) async throws {
        try await withJWTGateway { gateway, _, _ in
            let token = Self.tokens[name]!
            let r = try await call(gateway, "/all", token: token)
            #expect(r.status == 401)
            #expect(r.json["detail"] as? String == detail)
            #expect(r.headers.first(name: "www-authenticate")?.contains(#"error="invalid_token""#) == true)
            #expect(!r.body.contains(token) && !(r.headers.first(name: "www-authenticate") ?? "").contains(token))
        }
    }

    /// Keys may also be given as JWKs in the policy's options.
    @Test func aKeyGivenAsAJWKInTheConfigVerifies() async throws {
        let jwks = try String(contentsOfFile: Self.fixtures + "/jwks.json", encoding: .utf8)
        let set = try JSONSerialization.jsonObject(with: Data(jwks.utf8)) as! [String: Any]
        let keys = (set["set"] as! [String: Any])["keys"] as! [[String: Any]]
        let rsa = String(decoding: try JSONSerialization.data(withJSONObject: keys[0]), as: UTF8.self)
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["j", "whoami"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "j", "policyType": "jwt-inbound", "options": { "keys": [ { "jwk": "# + rsa + #" } ], "audience": "gatehouse-tests" } }, "#
                + #"{ "name": "whoami", "policyType": "custom-code-inbound", "handler": { "module": "$import(./plugins/whoami)" } } ] }"#,
            "plugins/whoami.lua": "return function(request) return Response.json({ sub = request.user.sub }) end\n",
        ])
        defer { fixture.remove() }
        try await withGateway(fixture, upstreams: []) { gateway, _, _ in
            let ok = try await call(gateway, "/a", token: Self.tokens["jwks_rsa"]!)
            #expect(ok.status == 200, "\(ok.body)")
            #expect(ok.json["sub"] as? String == "user-42")
            #expect(try await call(gateway, "/a", token: Self.tokens["jwks_ec"]!).status == 401, "an EC token against an RSA-only policy")
        }
    }

    /// `hideCredentials`: the accepted token goes no further than the gateway, from a header or
    /// from a cookie (the other cookies kept, in one `Cookie` field), and both when a client
    /// sends both; without it, it is forwarded. Checked at the upstream.
    @Test func hideCredentialsRemovesTheTokenBeforeTheUpstream() async throws {
        let key = #"{ "alg": "HS256", "secret": "$env(JWT_SECRET)" }"#
        let forward = #""handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/hidden", "{ " + forward + #", "policies": { "inbound": ["hidden"] } }"#),
                ("GET", "/shown", "{ " + forward + #", "policies": { "inbound": ["shown"] } }"#),
            ]),
            "config/policies.json": #"{ "policies": [ { "name": "hidden", "policyType": "jwt-inbound", "options": { "hideCredentials": true, "cookieName": "session", "keys": ["# + key + #"] } }, "#
                + #"{ "name": "shown", "policyType": "jwt-inbound", "options": { "keys": ["# + key + #"] } } ] }"#,
        ])
        defer { fixture.remove() }
        try await withGateway(fixture, environment: ["JWT_SECRET": Self.secret]) { gateway, _, _ in
            let token = Self.tokens["HS256"]!
            let header = try await call(gateway, "/hidden", token: token)
            #expect(header.status == 200)
            #expect(header.upstreamHeaders["authorization"] == nil)
            let cookie = try await send(gateway.baseURL + "/hidden", headers: [("Cookie", "theme=dark; session=\(token); lang=en")])
            #expect(cookie.status == 200)
            #expect(cookie.upstreamHeaders["cookie"] == "theme=dark; lang=en")
            let both = try await send(gateway.baseURL + "/hidden", headers: [("Cookie", "session=\(token)"), ("Authorization", "Bearer \(token)")])
            #expect(both.status == 200)
            #expect(both.upstreamHeaders["cookie"] == nil && both.upstreamHeaders["authorization"] == nil)
            #expect(!both.body.contains(token))
            let shown = try await call(gateway, "/shown", token: token)
            #expect(shown.upstreamHeaders["authorization"] == "Bearer \(token)")
        }
    }

    @Test func aShortHMACSecretIsAConfigErrorNotACrash() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/a", #"{ "handler": { "type": "static" }, "policies": { "inbound": ["j"] } }"#)]),
            "config/policies.json": #"{ "policies": [ { "name": "j", "policyType": "jwt-inbound", "options": { "keys": [ { "alg": "HS512", "secret": "only-forty-bytes-long-secret-0123456789" } ] } } ] }"#,
        ])
        defer { fixture.remove() }
        do {
            _ = try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger())
            Issue.record("expected a configuration error")
        } catch {
            #expect("\(error)".contains("HS512 needs a secret of at least 64 bytes"))
        }
    }

    @Test func missingTokenIs401WithAPlainChallenge() async throws {
        try await withJWTGateway { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/all")
            #expect(r.status == 401)
            #expect(r.headers.first(name: "www-authenticate") == #"Bearer realm="gatehouse""#)
            #expect(try await send(gateway.baseURL + "/all", headers: [("Authorization", "Bearer not-a-jwt")]).json["detail"] as? String == "The token is malformed.")
        }
    }

    @Test func aTokenCanComeFromACookie() async throws {
        try await withJWTGateway { gateway, _, _ in
            let r = try await send(gateway.baseURL + "/cookie", headers: [("Cookie", "theme=dark; session=\(Self.tokens["HS256"]!)")])
            #expect(r.status == 200)
            #expect(r.json["sub"] as? String == "user-42")
        }
    }

    @Test func jwksKeysAreFetchedOnceAndAnUnknownKidRefetchesExactlyOnce() async throws {
        // A manual clock: neither the cache age nor the refetch interval passes during the test,
        // however slow the machine.
        try await withJWTGateway(clock: ServiceClock.manual()) { gateway, jwks, _ in
            #expect(try await call(gateway, "/jwks", token: Self.tokens["jwks_rsa"]!).status == 200)
            #expect(try await call(gateway, "/jwks", token: Self.tokens["jwks_ec"]!).status == 200)
            #expect(jwks.requestCount == 1)
            let unknown = try await call(gateway, "/jwks", token: Self.tokens["jwks_unknown_kid"]!)
            #expect(unknown.status == 401)
            #expect(unknown.json["detail"] as? String == "The token's signing key is not known.")
            #expect(jwks.requestCount == 2, "one refetch for the unknown kid")
            for _ in 0..<3 { _ = try await call(gateway, "/jwks", token: Self.tokens["jwks_unknown_kid"]!) }
            #expect(jwks.requestCount == 2, "no more refetches within the interval")
        }
    }

    @Test func whenTheJWKSHostIsDownTheCachedKeysKeepWorking() async throws {
        let clock = ServiceClock.manual()
        try await withJWTGateway(clock: clock) { gateway, jwks, logs in
            #expect(try await call(gateway, "/jwks", token: Self.tokens["jwks_rsa"]!).status == 200)
            try await jwks.stop()
            clock.advance(by: .milliseconds(1_200)) // past jwksCacheSeconds: a refetch is due and fails
            let r = try await call(gateway, "/jwks", token: Self.tokens["jwks_rsa"]!)
            #expect(r.status == 200)
            #expect(logs.all.contains { $0.message.contains("JWKS fetch failed") })
        }
    }
}
