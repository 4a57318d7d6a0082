import Foundation
import GatehouseRedis
import GatehouseTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// The Redis client against a real `redis-server`: hiredis' codec both ways (binary-safe bulk
/// strings, integers, nulls, nested arrays, errors), pipelining, scripts, AUTH and SELECT,
/// reconnection after the server died, and the command timeout.
@Suite(.enabled(if: RedisServer.available, Comment(rawValue: RedisServer.skipReason)))
struct RedisClientTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func client(_ url: String, commandTimeout: Duration = .seconds(5)) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = commandTimeout
        return RedisClient(configuration: configuration, loops: Array(Self.group.makeIterator()), logger: Logger(label: "redis-test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func key(_ name: String) -> String { "gh:test:\(UUID().uuidString):\(name)" }

    @Test func repliesOfEveryTypeRoundTrip() async throws {
        let redis = try client(try RedisServer.sharedURL())
        defer { redis.shutdown() }
        let k = key("types")
        #expect(try await redis.send(["PING"]) == .status("PONG"))
        // Binary-safe: NUL, CR LF and bytes that are not UTF-8 survive both directions.
        let bytes: [UInt8] = [0, 13, 10, 255, 0x41, 0xC3]
        #expect(try await redis.send(bytes: [Array("SET".utf8), Array(k.utf8), bytes]) == .status("OK"))
        #expect(try await redis.send(["GET", k]) == .bulk(bytes))
        #expect(try await redis.send(["GET", k + ":missing"]) == .null)
        #expect(try await redis.send(["DEL", k]) == .integer(1))
        #expect(try await redis.send(["INCRBY", k, "-42"]) == .integer(-42))
        _ = try await redis.send(["RPUSH", k + ":list", "a", "", "c"])
        #expect(try await redis.send(["LRANGE", k + ":list", "0", "-1"]) == .array([.bulk(Array("a".utf8)), .bulk([]), .bulk(Array("c".utf8))]))
        // An error reply is a value, not a thrown error.
        guard case .error(let message) = try await redis.send(["LPUSH", k, "x"]) else { Issue.record("expected WRONGTYPE"); return }
        #expect(message.hasPrefix("WRONGTYPE"))
        // Nested arrays from a script.
        let nested = try await redis.send(["EVAL", "return {1, {2, 'x'}, {}}", "0"])
        #expect(nested == .array([.integer(1), .array([.integer(2), .bulk(Array("x".utf8))]), .array([])]))
        _ = try await redis.send(["DEL", k, k + ":list"])
    }

    @Test func largeValuesSplitAcrossReadsDecodeWhole() async throws {
        let redis = try client(try RedisServer.sharedURL())
        defer { redis.shutdown() }
        let k = key("large")
        let big = [UInt8]((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        _ = try await redis.send(bytes: [Array("SET".utf8), Array(k.utf8), big])
        #expect(try await redis.send(["GET", k]) == .bulk(big))
        _ = try await redis.send(["DEL", k])
    }

    @Test func concurrentCommandsArePipelinedAndAnsweredInOrder() async throws {
        let redis = try client(try RedisServer.sharedURL())
        defer { redis.shutdown() }
        let k = key("pipeline")
        let results = try await withThrowingTaskGroup(of: (Int, RedisValue).self) { group in
            for i in 0..<500 {
                group.addTask { (i, try await redis.send(["ECHO", "value-\(i)"])) }
            }
            var all: [Int: RedisValue] = [:]
            for try await (i, value) in group { all[i] = value }
            return all
        }
        #expect(results.count == 500)
        #expect((0..<500).allSatisfy { results[$0] == .bulk(Array("value-\($0)".utf8)) })
        // 500 INCRs from many tasks: Redis counted every one.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<500 { group.addTask { _ = try await redis.send(["INCR", k]) } }
            try await group.waitForAll()
        }
        #expect(try await redis.send(["GET", k]).integer == 500)
        _ = try await redis.send(["DEL", k])
    }

    @Test func scriptsRunByDigestAndReloadAfterAFlush() async throws {
        let server = try RedisServer.start()
        let redis = try client(server.url)
        defer { redis.shutdown() }
        let script = RedisScript("return ARGV[1] .. KEYS[1]")
        #expect(try await redis.run(script, keys: ["k"], arguments: ["v-"]).string == "v-k")
        #expect(try await redis.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))
        _ = try await redis.send(["SCRIPT", "FLUSH"])
        #expect(try await redis.run(script, keys: ["k2"], arguments: ["again-"]).string == "again-k2")
    }

    @Test func authAndDatabaseSelectionFromTheURL() async throws {
        let server = try RedisServer.start(arguments: ["--requirepass", "s3cr:t/pw"])
        // Without the password the connection setup fails, saying why.
        let plain = try client(server.url)
        defer { plain.shutdown() }
        let noAuth = await #expect(throws: RedisError.self) { _ = try await plain.send(["GET", "x"]) }
        #expect(noAuth?.description.contains("NOAUTH") == true)
        let authed = try client("redis://:s3cr%3At%2Fpw@127.0.0.1:\(server.port)/3")
        defer { authed.shutdown() }
        _ = try await authed.send(["SET", "where", "db3"])
        #expect(try await authed.send(["GET", "where"]).string == "db3")
        let db0 = try client("redis://:s3cr%3At%2Fpw@127.0.0.1:\(server.port)")
        defer { db0.shutdown() }
        #expect(try await db0.send(["GET", "where"]) == .null)
        // A wrong password fails the connection, saying so without the password.
        let wrong = try client("redis://:nope@127.0.0.1:\(server.port)")
        defer { wrong.shutdown() }
        let refusal = await #expect(throws: RedisError.self) { _ = try await wrong.send(["PING"]) }
        #expect(refusal?.description.contains("WRONGPASS") == true)
        #expect(refusal?.description.contains("nope") == false)
    }

    @Test func reconnectsAfterTheServerDiedAndCameBack() async throws {
        let server = try RedisServer.start()
        let redis = try client(server.url)
        defer { redis.shutdown() }
        #expect(try await redis.send(["PING"]) == .status("PONG"))
        server.kill()
        await #expect(throws: RedisError.self) { _ = try await redis.send(["PING"]) }
        #expect(!redis.isReachable)
        try server.restart()
        // Within the backoff (at most 2 s) the client connects again.
        var answered = false
        for _ in 0..<200 where !answered {
            if (try? await redis.send(["PING"])) == .status("PONG") { answered = true } else { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(answered)
        // Reachable again once commands have succeeded for the quiet period (2.5 s).
        for _ in 0..<400 where !redis.isReachable {
            _ = try? await redis.send(["PING"])
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(redis.isReachable)
    }

    @Test func aSlowServerHitsTheCommandTimeout() async throws {
        let server = try RedisServer.start(arguments: ["--enable-debug-command", "yes"])
        let redis = try client(server.url, commandTimeout: .milliseconds(100))
        let blocker = try client(server.url, commandTimeout: .seconds(10))
        defer { redis.shutdown(); blocker.shutdown() }
        #expect(try await redis.send(["PING"]) == .status("PONG"))
        let woke = Flag()
        let sleeping = Task {
            _ = try await blocker.send(["DEBUG", "SLEEP", "5"])
            woke.set()
        }
        // Until the blocker's sleep has reached the server a PING is answered; from then on it
        // must fail by the command timeout while the server still sleeps (checked by the
        // sleep's own reply not having come yet, not by a clock).
        var timedOut = false
        for _ in 0..<200 where !timedOut {
            do {
                _ = try await redis.send(["PING"])
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                #expect(error as? RedisError == .timedOut)
                #expect(!woke.isSet, "failed by the command timeout, before Redis woke up")
                timedOut = true
            }
        }
        #expect(timedOut)
        _ = try await sleeping.value
        // After the backoff (50 ms) a new connection answers.
        var answered = false
        for _ in 0..<200 where !answered {
            if (try? await redis.send(["PING"])) == .status("PONG") { answered = true } else { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(answered)
    }

    @Test func redissVerifiesTheServerWithTheConfiguredCA() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try RedisServer.start(tls: certificates)
        var configuration = try RedisConfiguration(url: "rediss://localhost:\(server.port)/1")
        configuration.caFile = certificates.caFile
        let verified = RedisClient(configuration: configuration, loops: [Self.group.next()], logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { verified.shutdown() }
        #expect(try await verified.send(["PING"]) == .status("PONG"))
        _ = try await verified.send(["SET", "over-tls", "yes"])
        #expect(try await verified.send(["GET", "over-tls"]).string == "yes")
        // Without the CA the certificate is not trusted: the connection fails.
        let untrusted = RedisClient(
            configuration: try RedisConfiguration(url: "rediss://localhost:\(server.port)"), loops: [Self.group.next()],
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { untrusted.shutdown() }
        await #expect(throws: RedisError.self) { _ = try await untrusted.send(["PING"]) }
        // Plain RESP against the TLS port gets no answer it can read.
        let plain = try client("redis://127.0.0.1:\(server.port)", commandTimeout: .milliseconds(300))
        defer { plain.shutdown() }
        await #expect(throws: RedisError.self) { _ = try await plain.send(["PING"]) }
    }

    @Test func urlsParseAndMistakesAreNamed() throws {
        let full = try RedisConfiguration(url: "rediss://user:p%40ss@cache.internal:6380/2")
        #expect(full.host == "cache.internal" && full.port == 6380 && full.database == 2 && full.tls)
        #expect(full.username == "user" && full.password == "p@ss")
        #expect(full.endpoint == "rediss://cache.internal:6380/2")
        let bare = try RedisConfiguration(url: "redis://127.0.0.1")
        #expect(bare.port == 6379 && bare.password == nil && !bare.tls)
        #expect(throws: RedisURLError.self) { try RedisConfiguration(url: "http://x:1") }
        #expect(throws: RedisURLError.self) { try RedisConfiguration(url: "redis://host/notadb") }
        #expect(throws: RedisURLError.self) { try RedisConfiguration(url: "redis://") }
    }
}

/// A flag set from one task and read from another.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
