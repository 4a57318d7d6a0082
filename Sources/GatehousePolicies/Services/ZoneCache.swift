public import GatehouseCore
import NIOConcurrencyHelpers

/// A named in-memory cache shared by every VM of the process (`cache.zone(name)` in Lua):
/// JSON-compatible values with a TTL, bounded in entries and bytes, least recently used first
/// out. Expired entries are never returned.
public final class ZoneCache: Sendable {
    public let name: String
    public let maxEntries: Int
    public let maxBytes: Int
    private let state: NIOLockedValueBox<State>
    private let clock: ServiceClock

    struct Entry {
        var value: JSONValue
        var expires: ContinuousClock.Instant
        var bytes: Int
        var lastUse: UInt64
    }

    struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    init(name: String, maxEntries: Int, maxBytes: Int, clock: ServiceClock = .system) {
        self.clock = clock
        self.name = name
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.state = NIOLockedValueBox(State())
    }

    public func get(_ key: String) -> JSONValue? {
        let now = clock.now
        return state.withLockedValue { s in
            guard var entry = s.entries[key] else { return nil }
            guard entry.expires > now else {
                s.bytes -= entry.bytes
                s.entries[key] = nil
                return nil
            }
            s.clock += 1
            entry.lastUse = s.clock
            s.entries[key] = entry
            return entry.value
        }
    }

    /// Stores `value` for `ttl`; a value larger than the whole zone is not stored.
    public func put(_ key: String, _ value: JSONValue, ttl: Duration) {
        let bytes = key.utf8.count + value.estimatedBytes
        guard bytes <= maxBytes else { return }
        let expires = clock.now + ttl
        state.withLockedValue { s in
            if let old = s.entries[key] { s.bytes -= old.bytes }
            s.clock += 1
            s.entries[key] = Entry(value: value, expires: expires, bytes: bytes, lastUse: s.clock)
            s.bytes += bytes
            // Evict least recently used entries until both bounds hold (O(n) per eviction;
            // zones are small and evictions rare compared with hits).
            while s.entries.count > maxEntries || s.bytes > maxBytes {
                guard let victim = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { break }
                s.bytes -= victim.value.bytes
                s.entries[victim.key] = nil
            }
        }
    }

    public func delete(_ key: String) {
        state.withLockedValue { s in
            if let old = s.entries.removeValue(forKey: key) { s.bytes -= old.bytes }
        }
    }

    public var count: Int { state.withLockedValue { $0.entries.count } }
}

extension JSONValue {
    /// Approximate memory size, for cache bounds.
    var estimatedBytes: Int {
        switch self {
        case .null, .bool: 8
        case .int, .double: 16
        case .string(let s): 16 + s.utf8.count
        case .array(let a): a.reduce(16) { $0 + $1.estimatedBytes }
        case .object(let o): o.reduce(32) { $0 + 16 + $1.key.utf8.count + $1.value.estimatedBytes }
        }
    }
}
