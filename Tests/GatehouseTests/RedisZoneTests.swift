import Foundation
import GatehousePolicies
import GatehouseRedis
import GatehouseTesting
import Logging
import NIOPosix
import Testing

/// `cache.zone(name, { store = "redis" })` and `ratelimit.check(…, { store = "redis" })` against
/// a real `redis-server`: what one gateway writes another reads, TTLs become Redis expiries, a
/// Redis that cannot answer is an error value the script handles, not a crash.
@Suite(.enabled(if: RedisServer.available, Comment(rawValue: RedisServer.skipReason)))
struct RedisZoneTests {
    static let plugin = """
    local routes = cache.zone("routes", { store = "redis" })
    return {
      put = function(request)
        local ok, err = routes:put(request.query.k, { backend = request.query.v, n = 1 }, 60)
        return Response.json({ ok = ok, err = err })
      end,
      get = function(request)
        local value, err = routes:get(request.query.k)
        return Response.json({ value = value, err = err })
      end,
      delete = function(request)
        local ok, err = routes:delete(request.query.k)
        return Response.json({ ok = ok, err = err })
      end,
      limit = function(request)
        local allowed, remaining, retry = ratelimit.check("export:" .. request.query.t, { rpm = 1, burst = 3, store = "redis" })
        if allowed == nil then return Response.json({ err = remaining }, 503) end
        return Response.json({ allowed = allowed, remaining = remaining, retry = retry })
      end,
    }
    """

    static func project(redisURL: String) throws -> ConfigFixture {
        try ConfigFixture(files: [
            "config/gatehouse.json": #"{ "redis": { "url": ""# + redisURL + #"", "commandTimeoutMs": 5000, "connectTimeoutMs": 500 } }"#,
            "config/routes.oas.json": ConfigFixture.routes(["put", "get", "delete", "limit"].map { name in
                ("GET", "/" + name, #"{ "handler": { "type": "lua", "module": "$import(./plugins/shared)", "export": ""# + name + #"" } }"#)
            }),
            "config/policies.json": #"{ "policies": [] }"#,
            "plugins/shared.lua": plugin,
        ])
    }

    func start(_ fixture: ConfigFixture) async throws -> TestGateway {
        try await TestGateway.start(configDirectory: fixture.configDirectory, pluginDirectories: [fixture.pluginDirectory], logger: LogCapture().logger())
    }

    @Test func aValueOneGatewayPutsAnotherReads() async throws {
        let url = try RedisServer.sharedURL()
        let fixture = try Self.project(redisURL: url)
        defer { fixture.remove() }
        let one = try await start(fixture)
        let two = try await start(fixture)
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = .seconds(10)
        let redis = RedisClient(configuration: configuration, loops: [MultiThreadedEventLoopGroup.singleton.next()], logger: Logger(label: "t"))
        do {
            let key = "tenant-" + UUID().uuidString
            #expect(try await send(one.baseURL + "/put?k=\(key)&v=eu-west").json["ok"] as? Bool == true)
            let read = try await send(two.baseURL + "/get?k=\(key)").json
            #expect((read["value"] as? [String: Any])?["backend"] as? String == "eu-west")
            // The TTL is Redis' expiry on the key (60 s), under a name that cannot collide.
            let ttl = try await redis.send(["PTTL", "gh:zone:6:routes:" + key]).integer ?? -1
            #expect(ttl > 0 && ttl <= 60_000)
            #expect(try await send(two.baseURL + "/delete?k=\(key)").json["ok"] as? Bool == true)
            #expect(try await send(one.baseURL + "/get?k=\(key)").json["value"] == nil, "deleted everywhere")
            // ratelimit.check in Redis: both gateways draw on one bucket of 3.
            let tenant = UUID().uuidString
            var allowed = 0
            for i in 0..<8 {
                let reply = try await send((i % 2 == 0 ? one : two).baseURL + "/limit?t=\(tenant)").json
                if reply["allowed"] as? Bool == true { allowed += 1 }
            }
            #expect(allowed == 3)
        } catch {
            redis.shutdown()
            try await one.stop()
            try await two.stop()
            throw error
        }
        redis.shutdown()
        try await one.stop()
        try await two.stop()
    }

    @Test func aDownRedisIsAnErrorValueTheScriptHandles() async throws {
        let server = try RedisServer.start()
        let fixture = try Self.project(redisURL: server.url)
        defer { fixture.remove() }
        let gateway = try await start(fixture)
        do {
            #expect(try await send(gateway.baseURL + "/put?k=a&v=b").json["ok"] as? Bool == true)
            server.kill()
            let get = try await send(gateway.baseURL + "/get?k=a")
            #expect(get.status == 200)
            #expect((get.json["err"] as? String)?.contains("Redis") == true)
            #expect((try await send(gateway.baseURL + "/put?k=a&v=c").json["err"] as? String)?.contains("Redis") == true)
            let limit = try await send(gateway.baseURL + "/limit?t=x")
            #expect(limit.status == 503)
            #expect((limit.json["err"] as? String)?.contains("Redis") == true)
        } catch {
            try await gateway.stop()
            throw error
        }
        try await gateway.stop()
    }

    @Test func aRedisZoneWithoutARedisIsALoadError() async throws {
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([("GET", "/get", #"{ "handler": { "type": "lua", "module": "$import(./plugins/shared)", "export": "get" } }"#)]),
            "config/policies.json": #"{ "policies": [] }"#,
            "plugins/shared.lua": Self.plugin,
        ])
        defer { fixture.remove() }
        await #expect { try await start(fixture) } throws: { error in
            "\(error)".contains("store \"redis\" needs a Redis store") && "\(error)".contains("shared.lua")
        }
    }
}
