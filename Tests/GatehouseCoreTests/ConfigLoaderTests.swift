import Foundation
import GatehouseCore
import Testing

@Suite struct ConfigLoaderTests {
    /// Writes a config directory and loads it.
    func load(_ files: [String: String], environment: [String: String] = [:]) throws(ConfigErrors) -> GatewayConfig {
        try loadConfigDirectory(files, environment: environment)
    }

    let policies = #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound" } ] }"#

    func routes(_ routeJSON: String, path: String = "/v1/{+path}") -> String {
        #"{ "openapi": "3.1.0", "paths": { ""# + path + #"": { "get": { "x-gatehouse-route": "# + routeJSON + " } } } }"
    }

    @Test func validConfigLoadsWithEnvSubstitution() throws {
        let config = try load([
            "routes.oas.json": routes(#"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(BASE)" } }, "policies": { "inbound": ["auth"] } }"#),
            "policies.json": policies,
        ], environment: ["BASE": "http://127.0.0.1:1234/"])
        #expect(config.routes.count == 1)
        guard case .urlForward(let base, _, _) = config.routes[0].handler else { Issue.record("wrong handler"); return }
        #expect(base == "http://127.0.0.1:1234")
    }

    @Test func unknownPolicyIsReportedWithFilePointerAndLine() {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "static" }, "policies": { "inbound": ["missing"] } }"#),
                "policies.json": policies,
            ])
            Issue.record("expected an error")
        } catch {
            let e = error.errors[0]
            #expect(e.file.hasSuffix("routes.oas.json"))
            #expect(e.pointer == "/paths/~1v1~1{+path}/get/x-gatehouse-route/policies/inbound/0")
            #expect(e.line == 1)
            #expect(e.message.contains("unknown policy 'missing'"))
        }
    }

    @Test func invalidJSONReportsTheLine() {
        do {
            _ = try load(["routes.oas.json": "{\n  \"paths\": {\n    \"/a\": [\n  }\n}", "policies.json": policies])
            Issue.record("expected an error")
        } catch {
            #expect(error.errors[0].line == 4)
            #expect(error.errors[0].message.hasPrefix("not valid JSON"))
        }
    }

    @Test func missingEnvironmentVariableNamesTheVariableNotAValue() {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "url-forward", "options": { "baseUrl": "$env(NOPE)" } } }"#),
                "policies.json": policies,
            ])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("NOPE is not set"))
        }
    }

    @Test func shadowedRoutesAreReported() {
        let doc = #"{ "paths": { "/a/{x}": { "get": { "x-gatehouse-route": { "handler": { "type": "static" } } } }, "/a/{y}": { "get": { "x-gatehouse-route": { "handler": { "type": "static" } } } } } }"#
        do {
            _ = try load(["routes.oas.json": doc, "policies.json": policies])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("shadowed by GET /a/{x}"))
        }
    }

    @Test func everyErrorOfALoadIsReportedAtOnce() {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "teleport" } }"#),
                "policies.json": #"{ "policies": [ { "name": "x", "policyType": "nope" } ] }"#,
            ])
            Issue.record("expected errors")
        } catch {
            #expect(error.errors.count == 2)
        }
    }

    @Test(arguments: ["http://x/a/../b", "http://x/%2e%2E", "$env(BASE)"])
    func aBaseURLWithADotSegmentIsALoadError(_ base: String) {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "url-forward", "options": { "baseUrl": ""# + base + #"" } } }"#),
                "policies.json": policies,
            ], environment: ["BASE": "http://x/tenant/./y"])
            Issue.record("\(base) loaded")
        } catch {
            #expect(error.description.contains("'.' or '..' path segment"), "\(error)")
        }
    }

    @Test func rewritePatternMustUseRouteParameters() {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "url-rewrite", "options": { "rewritePattern": "http://x/${params.id}" } } }"#),
                "policies.json": policies,
            ])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("${params.id} is not a parameter"))
        }
    }

    @Test func authenticationPoliciesAlwaysFailClosed() throws {
        let config = try load([
            "routes.oas.json": routes(#"{ "handler": { "type": "static" }, "policies": { "inbound": ["auth"] } }"#),
            "policies.json": #"{ "policies": [ { "name": "auth", "policyType": "api-key-inbound", "failMode": "open" } ] }"#,
        ])
        #expect(config.policies["auth"]?.failOpen == false)
    }

    @Test func consumerMetadataIsCapped() {
        let big = String(repeating: "x", count: 5000)
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "static" } }"#),
                "policies.json": policies,
                "consumers.json": #"{ "consumers": [ { "sub": "a", "keys": [], "metadata": { "blob": ""# + big + #"" } } ] }"#,
            ])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("the limit is 4096"))
        }
    }

    @Test func consumerKeysMustBeSHA256Digests() {
        do {
            _ = try load([
                "routes.oas.json": routes(#"{ "handler": { "type": "static" } }"#),
                "policies.json": policies,
                "consumers.json": #"{ "consumers": [ { "sub": "a", "keys": [ { "sha256": "sk_live_plaintext" } ] } ] }"#,
            ])
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("SHA-256"))
        }
    }
}
