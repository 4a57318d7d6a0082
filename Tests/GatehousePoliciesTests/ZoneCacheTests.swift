import GatehouseCore
import GatehousePolicies
import Testing

@Suite struct ZoneCacheTests {
    @Test func leastRecentlyUsedEntriesGoFirstWhenTheEntryBoundIsReached() {
        let zone = RuntimeServices(fetcher: nil).zone("lru", maxEntries: 3)
        for key in ["a", "b", "c"] { zone.put(key, .string(key), ttl: .seconds(60)) }
        _ = zone.get("a") // a is now more recent than b
        zone.put("d", "d", ttl: .seconds(60))
        #expect(zone.get("b") == nil)
        #expect(zone.get("a") == "a")
        #expect(zone.get("c") == "c")
        #expect(zone.get("d") == "d")
        #expect(zone.count == 3)
    }

    @Test func theByteBoundEvictsAndOversizedValuesAreNotStored() {
        let zone = RuntimeServices(fetcher: nil).zone("bytes", maxEntries: 100, maxBytes: 1_000)
        let big = JSONValue.string(String(repeating: "x", count: 400))
        zone.put("one", big, ttl: .seconds(60))
        zone.put("two", big, ttl: .seconds(60))
        zone.put("three", big, ttl: .seconds(60))
        #expect(zone.get("one") == nil, "evicted to stay under 1,000 bytes")
        #expect(zone.get("three") == big)
        zone.put("huge", .string(String(repeating: "y", count: 5_000)), ttl: .seconds(60))
        #expect(zone.get("huge") == nil)
        #expect(zone.get("three") == big, "an oversized value evicts nothing")
    }

    @Test func expiredEntriesAreNeverReturned() async throws {
        let clock = ServiceClock.manual()
        let zone = RuntimeServices(fetcher: nil, clock: clock).zone("ttl")
        zone.put("k", .object(["v": .int(1)]), ttl: .milliseconds(50))
        #expect(zone.get("k")?["v"] == .int(1))
        clock.advance(by: .milliseconds(49))
        #expect(zone.get("k") != nil, "not yet expired")
        clock.advance(by: .milliseconds(2))
        #expect(zone.get("k") == nil)
        zone.delete("k")
        #expect(zone.count == 0)
    }

    @Test func zonesAreSharedByName() {
        let services = RuntimeServices(fetcher: nil)
        services.zone("shared").put("k", "v", ttl: .seconds(60))
        #expect(services.zone("shared").get("k") == "v")
    }
}
