public import GatehouseCore
public import GatehouseRedis

/// The Redis side of `cache.zone(name, { store = "redis" })`: the same get/put/delete as an
/// in-process ``ZoneCache``, shared by every gateway process using the Redis. Values are stored
/// as JSON text with a `PX` expiry; keys are `gh:zone:<length of name>:<name>:<key>` (the length
/// makes the mapping one to one whatever colons names and keys contain). Bounds are Redis' own
/// (`maxmemory` and its eviction policy).
public struct RedisZoneStore: Sendable {
    let client: RedisClient

    public init(client: RedisClient) {
        self.client = client
    }

    static func key(zone: String, key: String) -> String {
        "gh:zone:" + String(zone.utf8.count) + ":" + zone + ":" + key
    }

    /// The value, nil for a miss, or why Redis could not answer.
    public func get(zone: String, key: String) async -> Result<JSONValue?, RedisError> {
        do {
            switch try await client.send(["GET", Self.key(zone: zone, key: key)]) {
            case .null: return .success(nil)
            case .bulk(let bytes):
                // A value another writer left that is not JSON is a miss, not an error.
                return .success(try? JSONValue.parse(bytes))
            case .error(let message): return .failure(.server(message))
            case let other: return .failure(.protocolError("unexpected reply to GET: \(other)"))
            }
        } catch {
            return .failure(error)
        }
    }

    public func put(zone: String, key: String, value: JSONValue, ttl: Duration) async -> Result<Void, RedisError> {
        let (s, atto) = ttl.components
        let milliseconds = max(1, s * 1000 + atto / 1_000_000_000_000_000)
        let command: [[UInt8]] = [Array("SET".utf8), Array(Self.key(zone: zone, key: key).utf8), value.serialized(), Array("PX".utf8), Array(String(milliseconds).utf8)]
        return await expectOK(command)
    }

    public func delete(zone: String, key: String) async -> Result<Void, RedisError> {
        await expectOK([Array("DEL".utf8), Array(Self.key(zone: zone, key: key).utf8)])
    }

    private func expectOK(_ command: [[UInt8]]) async -> Result<Void, RedisError> {
        do {
            if case .error(let message) = try await client.send(bytes: command) { return .failure(.server(message)) }
            return .success(())
        } catch {
            return .failure(error)
        }
    }
}
