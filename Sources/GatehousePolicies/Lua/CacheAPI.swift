import GatehouseCore
import GatehouseLua

/// Host functions behind `cache.zone(name)` and its `get`, `put`, `delete`.
extension PolicyRuntime {
    func cacheAPI() -> [(String, HostFunction)] {
        [
            ("cache_zone", { [unowned self] L in
                guard let name = L.toString(at: 1), !name.isEmpty else { return .badArgument(1, "zone", expected: "string", state: L) }
                var maxEntries = 10_000, maxBytes = 16 << 20
                if L.type(at: 2) == .table {
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
                guard let seconds = L.toNumber(at: 4), seconds > 0 else { return .badArgument(3, "put", expected: "a TTL in seconds", state: L, slot: 4) }
                switch L.readJSON(at: 3) {
                case .success(let value):
                    self.services.zone(name).put(key, value, ttl: .milliseconds(Int64(seconds * 1000)))
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
        ]
    }
}
