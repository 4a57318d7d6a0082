import GatehouseCore
import GatehouseUpstreams
import Logging
import NIOCore
import Testing

/// Choosing a target: tiers, weights, least outstanding, consistent hashing.
@Suite struct LoadBalancingTests {
    func group(_ targets: [UpstreamTargetConfig], _ lb: LoadBalancing = .roundRobin, breaker: CircuitBreakerConfig? = CircuitBreakerConfig(threshold: 1)) -> UpstreamGroup {
        let config = UpstreamsConfig(groups: [UpstreamGroupConfig(name: "g", targets: targets, loadBalancing: lb, circuitBreaker: breaker)])
        return UpstreamGroups(client: nil, logger: Logger(label: "test")).install(config, settings: GatewaySettings())["g"]!
    }

    func counts(_ g: UpstreamGroup, _ n: Int, key: (Int) -> String? = { _ in nil }) -> [String: Int] {
        var out: [String: Int] = [:]
        for i in 0..<n {
            let lease = g.acquire(hashKey: key(i))!
            out[lease.url, default: 0] += 1
            lease.finish(.success)
        }
        return out
    }

    @Test func weightedRoundRobinSplitsByWeightWithin5Percent() {
        let g = group([.init(url: "http://a", weight: 5), .init(url: "http://b", weight: 3), .init(url: "http://c", weight: 2)])
        let c = counts(g, 10_000)
        for (url, share) in [("http://a", 0.5), ("http://b", 0.3), ("http://c", 0.2)] {
            #expect(abs(Double(c[url] ?? 0) / 10_000 - share) < 0.05 * share, "\(url): \(c[url] ?? 0)")
        }
    }

    @Test func smoothRoundRobinInterleaves() {
        let g = group([.init(url: "http://a", weight: 2), .init(url: "http://b", weight: 1)])
        let order = (0..<6).map { _ -> String in let l = g.acquire()!; l.finish(.success); return l.url }
        #expect(order == ["http://a", "http://b", "http://a", "http://a", "http://b", "http://a"])
    }

    @Test func aLowerTierIsUsedOnlyWhileTheUpperHasNoAvailableTarget() {
        let g = group([.init(url: "http://primary", priority: 1), .init(url: "http://secondary", priority: 2)])
        #expect(counts(g, 10) == ["http://primary": 10])
        // One failure opens the primary's breaker (threshold 1): traffic fails over.
        g.acquire()!.finish(.failure)
        #expect(counts(g, 10) == ["http://secondary": 10])
        #expect(g.report().map(\.state.breaker) == [.open, .closed])
    }

    @Test func noAvailableTargetIs503NamingTheGroupWithRetryAfter() {
        let g = group([.init(url: "http://10.1.2.3:81")], breaker: CircuitBreakerConfig(threshold: 1, openMilliseconds: 2500))
        let now = NIODeadline.now()
        g.acquire(at: now)!.finish(.failure, at: now)
        #expect(g.acquire(at: now) == nil)
        let problem = g.unavailableProblem(at: now)
        #expect(problem.status.code == 503)
        #expect(problem.detail?.contains("'g'") == true)
        #expect(problem.detail?.contains("10.1.2.3") == false)
        #expect(problem.headers[.retryAfter] == "3", "2.5 s, rounded up")
    }

    @Test func excludedTargetsAreSkipped() {
        let g = group([.init(url: "http://a"), .init(url: "http://b")])
        for _ in 0..<5 {
            let l = g.acquire(excluding: [0])!
            #expect(l.url == "http://b")
            l.finish(.success)
        }
    }

    @Test func leastOutstandingPrefersTheIdleTarget() {
        let g = group([.init(url: "http://a"), .init(url: "http://b")], .leastOutstanding)
        let held = g.acquire()!
        for _ in 0..<5 {
            let l = g.acquire()!
            #expect(l.url != held.url, "the busy target is avoided")
            l.finish(.success)
        }
        held.finish(.success)
        #expect(Set(counts(g, 10).keys).count == 2, "equal load rotates")
    }

    @Test func consistentHashingKeepsKeysAndMovesAboutOneNth() {
        let three = group((1...3).map { .init(url: "http://t\($0)") }, .consistentHash(.consumer))
        let four = group((1...4).map { .init(url: "http://t\($0)") }, .consistentHash(.consumer))
        var moved = 0
        var spread: [String: Int] = [:]
        for i in 0..<4000 {
            let key = "tenant-\(i)"
            let a = three.acquire(hashKey: key)!, b = three.acquire(hashKey: key)!
            #expect(a.url == b.url)
            let c = four.acquire(hashKey: key)!
            if c.url != a.url {
                moved += 1
                #expect(c.url == "http://t4", "a key only moves to the new target")
            }
            spread[a.url, default: 0] += 1
            for l in [a, b, c] { l.finish(.success) }
        }
        // About a quarter of the keys move to the fourth target.
        #expect(moved > 600 && moved < 1400, "moved \(moved) of 4000")
        #expect(spread.values.allSatisfy { $0 > 900 }, "\(spread)")
    }

    @Test func aHashedKeyFailsOverWhenItsTargetIsOpen() {
        let g = group((1...3).map { .init(url: "http://t\($0)") }, .consistentHash(.consumer))
        let home = g.acquire(hashKey: "k")!
        home.finish(.failure) // threshold 1: open
        let elsewhere = g.acquire(hashKey: "k")!
        #expect(elsewhere.url != home.url)
        elsewhere.finish(.success)
        #expect(g.acquire(hashKey: "k")?.url == elsewhere.url, "and stays there while it is open")
    }

    @Test func stateSurvivesAReloadWhileTheURLStays() {
        let registry = UpstreamGroups(client: nil, logger: Logger(label: "test"))
        func install(_ urls: [String]) -> UpstreamGroup {
            registry.install(UpstreamsConfig(groups: [UpstreamGroupConfig(name: "g", targets: urls.map { .init(url: $0) }, circuitBreaker: CircuitBreakerConfig(threshold: 1))]),
                             settings: GatewaySettings())["g"]!
        }
        let first = install(["http://a", "http://b"])
        first.acquire(excluding: [1])!.finish(.failure) // a opens
        let second = install(["http://a", "http://c"])
        #expect(second.report().map(\.state.breaker) == [.open, .closed], "a kept its open breaker; c is new")
        let third = install(["http://c"])
        _ = third
        let fourth = install(["http://a"])
        #expect(fourth.report()[0].state.breaker == .closed, "a target that left its group starts afresh")
    }
}
