import GatehouseCore
import GatehouseLua

/// Host functions behind `cache.zone(name)` and its `get`, `put`, `delete`: in-process zones
/// answer at once; Redis zones (`store = "redis"`) yield while Redis answers.
extension PolicyRuntime {
    /// Longer TTLs are cut to this (ten years), so any finite number is a valid TTL.
    static let maxTTLSeconds = 315_360_000.0

    func cacheAPI() -> [(String, HostFunction)] {
        [
            ("cache_zone", { [unowned self] L in
                guard let name = L.toString(at: 1), !name.isEmpty else { return .badArgument(1, "zone", expected: "string", state: L) }
                var maxEntries = 10_000, maxBytes = 16 << 20
                if L.type(at: 2) == .table {
                    if L.rawGet(2, field: "store") != .nil {
                        let store = L.toString(at: -1)
                        L.pop()
                        switch store {
                        case "memory": break
                        case "redis":
                            guard self.redis != nil else {
                                return .error("cache.zone: store \"redis\" needs a Redis store: add \"redis\": { \"url\": \"redis://127.0.0.1:6379\" } to gatehouse.json")
                            }
                            return .values(0)
                        default:
                            return .error("cache.zone: store must be \"memory\" or \"redis\"")
                        }
                    } else {
                        L.pop()
                    }
                    if L.rawGet(2, field: "maxEntries") == .number, let n = L.toInteger(at: -1), n > 0 { maxEntries = Int(n) }
                    L.pop()
                    if L.rawGet(2, field: "maxBytes") == .number, let n = L.toInteger(at: -1), n > 0 { maxBytes = Int(n) }
                    L.pop()
                }
                _ = self.services.zone(name, maxEntries: maxEntries, maxBytes: maxBytes)
                return .values(0)
            }),
            ("cache_get", { [unowned self] L in
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "get", expected: "string key", state: L, slot: 2) }
                if let value = self.services.zone(name).get(key) { L.push(json: value) } else { L.pushNil() }
                return .values(1)
            }),
            ("cache_put", { [unowned self] L in
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "put", expected: "string key", state: L, slot: 2) }
                guard let seconds = L.toNumber(at: 4), seconds > 0, seconds.isFinite else { return .badArgument(3, "put", expected: "a TTL in seconds", state: L, slot: 4) }
                switch L.readJSON(at: 3) {
                case .success(let value):
                    self.services.zone(name).put(key, value, ttl: .milliseconds(Int64(min(seconds, Self.maxTTLSeconds) * 1000)))
                    return .values(0)
                case .failure(let error):
                    return .error("cache values must be JSON-compatible: \(error)")
                }
            }),
            ("cache_delete", { [unowned self] L in
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "delete", expected: "string key", state: L, slot: 2) }
                self.services.zone(name).delete(key)
                return .values(0)
            }),
            // Redis zones: each yields; get → value | nil (miss) | nil, error; put and delete →
            // true | nil, error.
            ("cache_redis_get", { [unowned self] L in
                if let refusal = self.refuseWait(L, "zone:get") { return refusal }
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "get", expected: "string key", state: L, slot: 2) }
                self.current!.pending = .redisZone(.get(zone: name, key: key))
                return .yield
            }),
            ("cache_redis_put", { [unowned self] L in
                if let refusal = self.refuseWait(L, "zone:put") { return refusal }
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "put", expected: "string key", state: L, slot: 2) }
                guard let seconds = L.toNumber(at: 4), seconds > 0, seconds.isFinite else { return .badArgument(3, "put", expected: "a TTL in seconds", state: L, slot: 4) }
                switch L.readJSON(at: 3) {
                case .success(let value):
                    self.current!.pending = .redisZone(.put(zone: name, key: key, value: value, ttl: .milliseconds(Int64(min(seconds, Self.maxTTLSeconds) * 1000))))
                    return .yield
                case .failure(let error):
                    return .error("cache values must be JSON-compatible: \(error)")
                }
            }),
            ("cache_redis_delete", { [unowned self] L in
                if let refusal = self.refuseWait(L, "zone:delete") { return refusal }
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "delete", expected: "string key", state: L, slot: 2) }
                self.current!.pending = .redisZone(.delete(zone: name, key: key))
                return .yield
            }),
        ]
    }
}
