import Foundation
import GatehouseCore
import Testing

/// Seed 004's routing, row by row: every "Request → Routed To" pair and worked example, as the
/// table resolves them (group and upstream path; the target URL is joined in front).
@Suite struct ProxyRouteTableTests {
    /// Loads an `upstreams.json` alone (a complete gateway) and returns its table and groups.
    func load(_ json: String) throws -> UpstreamsConfig {
        try loadConfigDirectory(["upstreams.json": json]).upstreams
    }

    /// The URL a request path is sent to: the group's first target joined with the table's path.
    func routed(_ config: UpstreamsConfig, _ path: String) -> String? {
        guard let r = config.pathRoutes.resolve(path: path), let group = config.group(named: r.group) else { return nil }
        return PathJoin.join(group.targets[0].url, r.path)
    }

    @Test func basicCoreGroupRows() throws {
        let config = try load(#"""
        { "coreGroups": [ { "coreName": "api", "baseUrl": "http://localhost:4005",
            "routes": [ { "name": "users", "pathPrefix": "/api/http/user/" } ] } ] }
        """#)
        let rows: [(String, String)] = [
            ("/users", "http://localhost:4005/api/http/user/"),
            ("/users/123", "http://localhost:4005/api/http/user/123"),
            ("/users/123/orders", "http://localhost:4005/api/http/user/123/orders"),
        ]
        for (request, expected) in rows { #expect(routed(config, request) == expected, "\(request)") }
        #expect(config.pathRoutes.resolve(path: "/users")?.group == "api")
        #expect(routed(config, "/orders") == nil, "no route named orders")
        #expect(routed(config, "/usersx/1") == nil, "the name is a whole segment")
        #expect(routed(config, "/") == nil)
    }

    @Test func legacyCoresRouteByPrefix() throws {
        let config = try load(#"""
        { "cores": [ { "name": "users", "url": "http://localhost:4005/api/http/user/", "pathPrefix": "/users" } ] }
        """#)
        #expect(routed(config, "/users") == "http://localhost:4005/api/http/user/")
        #expect(routed(config, "/users/") == "http://localhost:4005/api/http/user/")
        #expect(routed(config, "/users/123") == "http://localhost:4005/api/http/user/123")
        #expect(routed(config, "/users/123/orders") == "http://localhost:4005/api/http/user/123/orders")
        #expect(routed(config, "/usersx") == nil)
    }

    let routeByPath = #"""
    { "coreGroups": [ { "coreName": "api", "baseUrl": "http://localhost:4005", "routes": [ { "name": "global", "routeByPath": {
        "v2/users": { "pathPrefix": "/api/http/users/", "preserveMatchedPath": true },
        "v2/orders": { "pathPrefix": "/api/http/orders/", "preserveMatchedPath": true },
        "": { "pathPrefix": "/api/http/global/" } } } ] } ] }
    """#

    @Test func routeByPathWithCatchAll() throws {
        let config = try load(routeByPath)
        #expect(routed(config, "/global/v2/users/123") == "http://localhost:4005/api/http/users/v2/users/123")
        #expect(routed(config, "/global/v2/orders/9") == "http://localhost:4005/api/http/orders/v2/orders/9")
        #expect(routed(config, "/global/v3/things") == "http://localhost:4005/api/http/global/v3/things")
        #expect(routed(config, "/global") == "http://localhost:4005/api/http/global/")
        #expect(routed(config, "/global/v2/usersx") == "http://localhost:4005/api/http/global/v2/usersx", "keys match whole segments")
    }

    @Test func preserveMatchedPathTrueAndFalse() throws {
        func config(_ preserve: Bool) throws -> UpstreamsConfig {
            try load(#"{ "coreGroups": [ { "coreName": "api", "baseUrl": "http://localhost:4005", "routes": [ { "name": "global", "routeByPath": { "v2/users": { "pathPrefix": "/api/http/users/", "preserveMatchedPath": \#(preserve) } } } ] } ] }"#)
        }
        #expect(routed(try config(true), "/global/v2/users/123") == "http://localhost:4005/api/http/users/v2/users/123")
        #expect(routed(try config(false), "/global/v2/users/123") == "http://localhost:4005/api/http/users/123")
        #expect(routed(try config(false), "/global/v2/users") == "http://localhost:4005/api/http/users/")
        #expect(routed(try config(false), "/global/v1/users") == nil, "no key matches and no catch-all")
        let withLegacy = try load(#"{ "coreGroups": [ { "coreName": "api", "baseUrl": "http://a", "routes": [ { "name": "global", "routeByPath": { "v2": { "pathPrefix": "/x/" } } } ] } ], "cores": [ { "name": "all", "url": "http://b/", "pathPrefix": "/" } ] }"#)
        #expect(routed(withLegacy, "/global/v1") == nil, "a named route decides; no fall-through to a legacy prefix")
        #expect(routed(withLegacy, "/other/v1") == "http://b/other/v1")
    }

    @Test func transformPathReplace() throws {
        let config = try load(#"""
        { "coreGroups": [ { "coreName": "api", "baseUrl": "http://localhost:4005", "routes": [ { "name": "global", "routeByPath": {
            "v2/users": { "pathPrefix": "/api/http/users/", "transformPath": { "replace": ["/v2/", "/"] } } } } ] } ] }
        """#)
        // The seed's worked example: /v2/users/123 → /users/123, then the prefix.
        #expect(routed(config, "/global/v2/users/123") == "http://localhost:4005/api/http/users/users/123")
    }

    @Test func mostSpecificKeyWinsWhateverTheOrder() throws {
        let config = try load(#"""
        { "coreGroups": [ { "coreName": "api", "baseUrl": "http://b", "routes": [ { "name": "r", "routeByPath": {
            "": { "pathPrefix": "/catch-all/" },
            "v2": { "pathPrefix": "/less/", "preserveMatchedPath": true },
            "v2/users": { "pathPrefix": "/medium/", "preserveMatchedPath": true },
            "v2/users/admin": { "pathPrefix": "/most/", "preserveMatchedPath": true } } } ] } ] }
        """#)
        #expect(routed(config, "/r/v2/users/admin/1") == "http://b/most/v2/users/admin/1")
        #expect(routed(config, "/r/v2/users/1") == "http://b/medium/v2/users/1")
        #expect(routed(config, "/r/v2/orders") == "http://b/less/v2/orders")
        #expect(routed(config, "/r/v1") == "http://b/catch-all/v1")
    }

    @Test func versionServiceAndModuleBasedExamples() throws {
        let version = try load(#"""
        { "coreGroups": [
          { "coreName": "api-v1", "baseUrl": "http://localhost:4005", "routes": [ { "name": "v1", "pathPrefix": "/api/http/" } ] },
          { "coreName": "api-v2", "baseUrl": "http://localhost:4006", "routes": [ { "name": "v2", "pathPrefix": "/api/http/" } ] } ] }
        """#)
        #expect(routed(version, "/v1/users/1") == "http://localhost:4005/api/http/users/1")
        #expect(routed(version, "/v2/users/1") == "http://localhost:4006/api/http/users/1")
        #expect(version.pathRoutes.resolve(path: "/v2/users/1")?.group == "api-v2")

        let services = try load(#"""
        { "coreGroups": [
          { "coreName": "users-svc", "baseUrl": "http://users-svc:4000", "routes": [ { "name": "users", "pathPrefix": "/api/http/" } ] },
          { "coreName": "orders-svc", "baseUrl": "http://orders-svc:4000", "routes": [ { "name": "orders", "pathPrefix": "/api/http/" } ] },
          { "coreName": "products-svc", "baseUrl": "http://products-svc:4000", "routes": [ { "name": "products", "pathPrefix": "/api/http/" } ] } ] }
        """#)
        #expect(routed(services, "/users/7") == "http://users-svc:4000/api/http/7")
        #expect(routed(services, "/orders/7") == "http://orders-svc:4000/api/http/7")
        #expect(routed(services, "/products") == "http://products-svc:4000/api/http/")

        let modules = try load(#"""
        { "coreGroups": [ { "coreName": "serverless-sst", "baseUrl": "http://localhost:4005", "routes": [
            { "name": "users", "pathPrefix": "/api/http/user/" }, { "name": "orders", "pathPrefix": "/api/http/order/" },
            { "name": "documents", "pathPrefix": "/api/http/documents/" }, { "name": "scheduling", "pathPrefix": "/api/http/scheduling/" } ] } ] }
        """#)
        #expect(routed(modules, "/users/1") == "http://localhost:4005/api/http/user/1")
        #expect(routed(modules, "/orders/1") == "http://localhost:4005/api/http/order/1")
        #expect(routed(modules, "/documents/a/b") == "http://localhost:4005/api/http/documents/a/b")
        #expect(routed(modules, "/scheduling") == "http://localhost:4005/api/http/scheduling/")
        #expect(Set(modules.groups.map(\.name)) == ["serverless-sst"])
    }

    /// Every combination of trailing slash on the base URL, leading and trailing slash on the
    /// prefix, and trailing slash on the request: exactly one `/` at each join.
    @Test func slashesAreJoinedExactlyOnce() throws {
        for base in ["http://b", "http://b/", "http://b/base", "http://b/base/"] {
            for prefix in ["/p", "/p/", "", "/"] {
                let config = try load(#"{ "coreGroups": [ { "coreName": "g", "baseUrl": "\#(base)", "routes": [ { "name": "n", "pathPrefix": "\#(prefix)" } ] } ] }"#)
                let root = base.hasPrefix("http://b/base") ? "http://b/base" : "http://b"
                let p = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                let stem = p.isEmpty ? root : root + "/" + p
                let prefixSlash = prefix.hasSuffix("/") && !p.isEmpty
                #expect(routed(config, "/n/x") == stem + "/x", "\(base) \(prefix)")
                #expect(routed(config, "/n/x/") == stem + "/x/", "\(base) \(prefix)")
                #expect(routed(config, "/n/") == stem + "/", "\(base) \(prefix)")
                let bare = routed(config, "/n")
                #expect(bare == stem + (prefixSlash || (prefix == "/") ? "/" : ""), "\(base) \(prefix) → \(bare ?? "nil")")
                #expect(!(bare ?? "").dropFirst("http://".count).contains("//"))
            }
        }
    }

    @Test func pathJoinRules() {
        #expect(PathJoin.join("/api/", "/123") == "/api/123")
        #expect(PathJoin.join("/api", "123") == "/api/123")
        #expect(PathJoin.join("/api", "/123") == "/api/123")
        #expect(PathJoin.join("/api/", "123") == "/api/123")
        #expect(PathJoin.join("/api", "") == "/api")
        #expect(PathJoin.join("/api", "/") == "/api/")
        #expect(PathJoin.join("", "/x") == "/x")
        #expect(PathJoin.join("", "x") == "/x")
        #expect(PathJoin.join("http://h:1", "/a") == "http://h:1/a")
    }
}
