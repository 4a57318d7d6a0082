import Foundation
import GatehouseCore
import Testing

/// `upstreams.json`: what loads, and every mistake reported with file, line and pointer.
@Suite struct UpstreamsConfigTests {
    func load(_ files: [String: String], environment: [String: String] = [:]) throws(ConfigErrors) -> GatewayConfig {
        try loadConfigDirectory(files, environment: environment)
    }

    func errors(_ upstreams: String, routes: String? = nil) -> [ConfigError] {
        var files = ["upstreams.json": upstreams]
        if let routes {
            files["routes.oas.json"] = routes
            files["policies.json"] = #"{ "policies": [] }"#
        }
        do {
            _ = try load(files)
            return []
        } catch {
            return error.errors
        }
    }

    @Test func aGroupWithEveryOptionLoads() throws {
        let config = try load(["upstreams.json": #"""
        { "groups": [ { "name": "users",
            "targets": [ { "url": "$env(PRIMARY)/", "weight": 3 }, { "url": "http://10.0.0.2:80", "priority": 2 } ],
            "timeouts": { "connectMs": 250, "responseMs": 2000 },
            "loadBalancing": { "type": "consistent-hash", "key": "header:x-tenant-id" },
            "circuitBreaker": { "threshold": 2, "timeout": 1500, "halfOpenMax": 1, "maxTimeout": 6000,
                                "failureRate": { "rate": 0.25, "window": 5000, "minimumRequests": 8 } },
            "healthCheck": { "passive": { "statuses": [500, 503] },
                             "active": { "path": "/health", "intervalMs": 200, "timeoutMs": 100, "healthyThreshold": 1, "unhealthyThreshold": 2 } } } ] }
        """#, "routes.oas.json": Self.staticRoute, "policies.json": #"{ "policies": [] }"#], environment: ["PRIMARY": "http://10.0.0.1:8080"])
        let g = try #require(config.upstreams.group(named: "users"))
        #expect(g.targets == [UpstreamTargetConfig(url: "http://10.0.0.1:8080", weight: 3, priority: 1), UpstreamTargetConfig(url: "http://10.0.0.2:80", weight: 1, priority: 2)])
        #expect(g.connectTimeoutMilliseconds == 250 && g.responseTimeoutMilliseconds == 2000)
        #expect(g.loadBalancing == .consistentHash(.header(.init("x-tenant-id")!)))
        #expect(g.circuitBreaker == CircuitBreakerConfig(threshold: 2, openMilliseconds: 1500, halfOpenMax: 1, maxOpenMilliseconds: 6000,
                                                         failureRate: .init(rate: 0.25, windowMilliseconds: 5000, minimumRequests: 8)))
        #expect(g.failureStatuses == [500, 503])
        #expect(g.activeCheck == ActiveHealthCheck(path: "/health", intervalMilliseconds: 200, timeoutMilliseconds: 100, healthyThreshold: 1, unhealthyThreshold: 2))
    }

    static let staticRoute = #"{ "openapi": "3.1.0", "paths": { "/x": { "get": { "x-gatehouse-route": { "handler": { "type": "static" } } } } } }"#

    @Test func defaultsAreSeed003sBreakerAndRoundRobin() throws {
        let config = try load(["upstreams.json": #"{ "coreGroups": [ { "coreName": "api", "baseUrl": "http://h", "routes": [ { "name": "a", "pathPrefix": "/" } ] } ] }"#])
        let g = try #require(config.upstreams.group(named: "api"))
        #expect(g.circuitBreaker == CircuitBreakerConfig(threshold: 5, openMilliseconds: 30_000, halfOpenMax: 3))
        #expect(g.loadBalancing == .roundRobin)
        #expect(g.failureStatuses == [502, 503, 504])
        #expect(g.activeCheck == nil)
        let off = try load(["upstreams.json": #"{ "coreGroups": [ { "coreName": "api", "baseUrl": "http://h", "circuitBreaker": false, "routes": [ { "name": "a", "pathPrefix": "/" } ] } ] }"#])
        #expect(off.upstreams.group(named: "api")?.circuitBreaker == nil)
    }

    @Test func upstreamsJSONAloneIsACompleteGateway() throws {
        let config = try load(["upstreams.json": #"{ "cores": [ { "name": "users", "url": "http://h/api/", "pathPrefix": "/users" } ] }"#])
        #expect(!config.routes.isEmpty)
        #expect(config.routes.allSatisfy { if case .upstreamGroup(nil, true, false) = $0.handler { true } else { false } })
        #expect(!config.routes.contains { $0.method == .trace }, "TRACE is never forwarded")
    }

    @Test func withoutPathRoutesTheOtherFilesAreStillRequired() {
        let e = errors(#"{ "groups": [ { "name": "g", "targets": [ { "url": "http://h" } ] } ] }"#)
        #expect(e.contains { $0.file.hasSuffix("routes.oas.json") && $0.message == "file not found" })
    }

    @Test func mistakesAreReportedWithLineAndPointer() {
        let e = errors("""
        { "groups": [
            { "name": "a", "targets": [ { "url": "ftp://h" } ] },
            { "name": "b", "targets": [] },
            { "name": "c", "targets": [ { "url": "http://h", "weight": 0 } ] },
            { "name": "d", "targets": [ { "url": "http://h" } ], "healthCheck": { "passive": { "statuses": [404] } } },
            { "name": "e", "targets": [ { "url": "http://h" } ], "circuitBreaker": { "treshold": 3 } },
            { "name": "f", "targets": [ { "url": "http://h" } ], "loadBalancing": "least-outstanding" },
            { "name": "f", "targets": [ { "url": "http://h" } ] },
            { "name": "g", "targets": [ { "url": "http://h/a/../b" } ] },
            { "name": "h", "targets": [ { "url": "http://h" }, { "url": "http://h/" } ] }
        ],
          "coreGroups": [ { "coreName": "i", "baseUrl": "http://h", "routes": [ { "name": "x/y", "pathPrefix": "/" } ] },
                          { "coreName": "j", "baseUrl": "http://h", "routes": [ { "name": "z" } ] },
                          { "coreName": "k", "baseUrl": "http://h", "loadBalancing": "random", "routes": [ { "name": "k", "pathPrefix": "/" } ] } ],
          "extra": 1 }
        """)
        func has(_ line: Int, _ fragment: String) -> Bool {
            e.contains { $0.line == line && $0.message.contains(fragment) && $0.file.hasSuffix("upstreams.json") }
        }
        #expect(has(2, "http:// or https://"))
        #expect(has(3, "has no target"))
        #expect(has(4, "must be greater than 0"))
        #expect(has(5, "only 5xx statuses"))
        #expect(has(6, "unknown member 'treshold'"))
        #expect(has(8, "duplicate upstream group 'f' (first declared at line 7)"))
        #expect(has(9, "'.' or '..'"))
        #expect(has(10, "listed twice"))
        #expect(has(12, "one path segment"))
        #expect(has(13, "needs a pathPrefix or routeByPath"))
        #expect(has(14, "loadBalancing is"))
        #expect(has(15, "unknown member 'extra'"))
        #expect(e.contains { $0.pointer == "/groups/0/targets/0/url" })
    }

    @Test func theUpstreamGroupHandlerNamesAKnownGroup() {
        let routes = #"{ "openapi": "3.1.0", "paths": { "/x": { "get": { "x-gatehouse-route": { "handler": { "type": "upstream-group", "options": { "group": "nope" } } } } } } }"#
        let e = errors(#"{ "groups": [ { "name": "g", "targets": [ { "url": "http://h" } ] } ] }"#, routes: routes)
        #expect(e.contains { $0.message.contains("unknown upstream group 'nope'") && $0.file.hasSuffix("routes.oas.json") })
        let tableless = #"{ "openapi": "3.1.0", "paths": { "/x": { "get": { "x-gatehouse-route": { "handler": { "type": "upstream-group" } } } } } }"#
        let e2 = errors(#"{ "groups": [ { "name": "g", "targets": [ { "url": "http://h" } ] } ] }"#, routes: tableless)
        #expect(e2.contains { $0.message.contains("needs options.group") })
    }

    @Test func routeNamesAndPrefixesAreUnique() {
        let e = errors(#"""
        { "coreGroups": [
            { "coreName": "a", "baseUrl": "http://h", "routes": [ { "name": "users", "pathPrefix": "/" } ] },
            { "coreName": "b", "baseUrl": "http://h", "routes": [ { "name": "users", "pathPrefix": "/" } ] } ],
          "cores": [ { "name": "c", "url": "http://h", "pathPrefix": "/x" }, { "name": "d", "url": "http://h", "pathPrefix": "/x/" } ] }
        """#)
        #expect(e.contains { $0.line == 3 && $0.message.contains("duplicate route name 'users'") })
        #expect(e.contains { $0.line == 4 && $0.message.contains("duplicate cores pathPrefix 'x'") })
        let legacyTargets = errors(#"{ "cores": [ { "name": "c", "url": "http://h/api/", "pathPrefix": "/x", "targets": [ { "url": "http://i/api" } ] } ] }"#)
        #expect(legacyTargets.contains { $0.message.contains("use coreGroups for several targets") })
    }

    @Test func aLuaTransformNamesAModuleAndExport() throws {
        let config = try load(["upstreams.json": #"{ "coreGroups": [ { "coreName": "a", "baseUrl": "http://h", "routes": [ { "name": "r", "routeByPath": { "v": { "pathPrefix": "/p/", "transformPath": { "module": "$import(./plugins/t)", "export": "strip" } } } } ] } ] }"#])
        let transforms = config.upstreams.pathRoutes.luaTransforms
        #expect(transforms.count == 1 && transforms[0].module.name == "t" && transforms[0].export == "strip")
        let r = try #require(config.upstreams.pathRoutes.resolve(path: "/r/v/1"))
        #expect(r.path == "/v/1" && r.pendingTransform?.prefix == "/p/")
        let e = errors(#"{ "coreGroups": [ { "coreName": "a", "baseUrl": "http://h", "routes": [ { "name": "r", "routeByPath": { "v": { "pathPrefix": "/", "transformPath": { "script": "x" } } } } ] } ] }"#)
        #expect(e.contains { $0.message.contains("transformPath is") })
    }

    @Test func aggregateOptionsAreChecked() {
        let groups = #"{ "groups": [ { "name": "users", "targets": [ { "url": "http://h" } ] } ] }"#
        func route(_ options: String, path: String = "/agg/{id}") -> String {
            #"{ "openapi": "3.1.0", "paths": { ""# + path + #"": { "get": { "x-gatehouse-route": { "handler": { "type": "aggregate", "options": "# + options + " } } } } } }"
        }
        let cases: [(String, String)] = [
            (#"{ "services": { "u": { "group": "nope", "methods": { "get": { "path": "/u" } } } } }"#, "unknown upstream group 'nope'"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u/${arg.0}" } } } } }"#, "unknown reference"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "u" } } } } }"#, "path starts with '/'"),
            (#"{ "services": { "u": { "group": "users", "methods": {} } } }"#, "has no methods"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "calls": [ { "service": "u", "method": "put" } ] }"#, "has no method 'put'"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "calls": [ { "service": "x", "method": "get" } ] }"#, "unknown service 'x'"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "calls": [ { "service": "u", "method": "get", "args": ["${params.nope}"] } ] }"#, "not a parameter of the route path"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "calls": [ { "service": "u", "method": "get" }, { "service": "u", "method": "get" } ] }"#, "two calls answer under the name 'u'"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "calls": [ { "name": "errors", "service": "u", "method": "get" } ] }"#, "\"errors\" is reserved"),
            (#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u" } } } }, "maxCalls": 1, "calls": [ { "service": "u", "method": "get" }, { "name": "v", "service": "u", "method": "get" } ] }"#, "maxCalls is 1"),
        ]
        for (options, fragment) in cases {
            let e = errors(groups, routes: route(options))
            #expect(e.contains { $0.message.contains(fragment) && $0.file.hasSuffix("routes.oas.json") }, "\(fragment): \(e)")
        }
        #expect(errors(groups, routes: route(#"{ "services": { "u": { "group": "users", "methods": { "get": { "path": "/u/${args.0.id}" } } } } }"#)).isEmpty)
    }
}
