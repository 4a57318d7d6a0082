public import GatehouseCore
import HTTPTypes
public import NIOCore
import NIOConcurrencyHelpers

/// One upstream group of a generation: its targets with their shared ``TargetHealth``, and
/// the choice of a target per request.
///
/// A request goes to the lowest `priority` tier that has an available target (breaker not
/// open, health check not failing), and within it by the group's `loadBalancing`.
public final class UpstreamGroup: Sendable {
    public struct Target: Sendable {
        public let config: UpstreamTargetConfig
        public let health: TargetHealth
    }

    public let config: UpstreamGroupConfig
    public let targets: [Target]
    /// Target indexes per tier, best tier first.
    let tiers: [[Int]]
    private let balancer: NIOLockedValueBox<BalancerState>
    /// Per tier, for consistent hashing.
    private let rings: [HashRing]

    public var name: String { config.name }

    init(config: UpstreamGroupConfig, health: (UpstreamTargetConfig) -> TargetHealth) {
        self.config = config
        targets = config.targets.map { Target(config: $0, health: health($0)) }
        let priorities = Set(config.targets.map(\.priority)).sorted()
        tiers = priorities.map { p in config.targets.indices.filter { config.targets[$0].priority == p } }
        balancer = NIOLockedValueBox(BalancerState(count: config.targets.count))
        if case .consistentHash = config.loadBalancing {
            rings = tiers.map { tier in HashRing(targets: tier.map { ($0, config.targets[$0].url, config.targets[$0].weight) }) }
        } else {
            rings = []
        }
    }

    /// A request's permission to use one target; report how it went with ``finish(_:)``.
    public struct Lease: Sendable {
        public let group: UpstreamGroup
        /// Index into ``UpstreamGroup/targets``.
        public let target: Int
        let admission: TargetHealth.Admission

        public var url: String { group.targets[target].config.url }

        public func finish(_ outcome: TargetHealth.Outcome, at now: NIODeadline = .now()) {
            group.targets[target].health.record(admission, outcome, at: now)
        }
    }

    /// Chooses a target and admits the request to it; nil when no target is available.
    /// `excluding` holds targets already tried by this request; `hashKey` is the value a
    /// consistent-hash group hashes (nil: round robin).
    public func acquire(excluding: Set<Int> = [], hashKey: String? = nil, at now: NIODeadline = .now()) -> Lease? {
        for (tierIndex, tier) in tiers.enumerated() {
            var candidates = tier.filter { !excluding.contains($0) && targets[$0].health.isAvailable(at: now) }
            // Another request may take the last half-open slot between the check and the
            // admission: then the next candidate is tried.
            while !candidates.isEmpty {
                let chosen = choose(among: candidates, tier: tierIndex, hashKey: hashKey)
                if let admission = targets[chosen].health.admit(at: now) {
                    return Lease(group: self, target: chosen, admission: admission)
                }
                candidates.removeAll { $0 == chosen }
            }
        }
        return nil
    }

    private func choose(among candidates: [Int], tier: Int, hashKey: String?) -> Int {
        if candidates.count == 1 { return candidates[0] }
        switch config.loadBalancing {
        case .consistentHash where hashKey != nil:
            return rings[tier].lookup(hashKey!, allowed: candidates) ?? candidates[0]
        case .leastOutstanding:
            let load = candidates.map { (index: $0, outstanding: targets[$0].health.outstanding, weight: config.targets[$0].weight) }
            return balancer.withLockedValue { state in
                // Fewest in flight per unit of weight; ties rotate so equal targets share.
                state.rotation &+= 1
                let start = state.rotation % load.count
                var best = load[start]
                for offset in 1..<load.count {
                    let c = load[(start + offset) % load.count]
                    if c.outstanding * best.weight < best.outstanding * c.weight { best = c }
                }
                return best.index
            }
        case .roundRobin, .consistentHash:
            return balancer.withLockedValue { state in state.smoothWeighted(candidates, weights: config.targets.map(\.weight)) }
        }
    }

    /// The answer when no target is available: 503 naming the group (never an address), with
    /// `Retry-After` the time until the first open breaker lets a probe through.
    public func unavailableProblem(at now: NIODeadline = .now()) -> Problem {
        let waits = targets.compactMap { $0.health.reopensIn(at: now) }
        let seconds = waits.min().map { max(1, Int(($0.nanoseconds + 999_999_999) / 1_000_000_000)) } ?? 1
        var headers = HTTPFields()
        headers[.retryAfter] = String(seconds)
        return Problem(
            status: .serviceUnavailable, type: Problem.Kind.upstreamUnavailable,
            detail: "No target of upstream group '\(name)' is available.", headers: headers)
    }

    /// Every target's state, for scripts and the admin endpoint.
    public func report(at now: NIODeadline = .now()) -> [(target: UpstreamTargetConfig, state: TargetHealth.Report)] {
        targets.map { ($0.config, $0.health.report(at: now)) }
    }
}

/// The mutable part of balancing, under the group's lock.
struct BalancerState {
    /// Smooth weighted round robin (as nginx): each pick adds every candidate's weight to its
    /// current value, takes the largest, and subtracts the candidates' total from it.
    var current: [Int]
    var rotation = 0

    init(count: Int) { current = Array(repeating: 0, count: count) }

    mutating func smoothWeighted(_ candidates: [Int], weights: [Int]) -> Int {
        var total = 0
        var best = candidates[0]
        for i in candidates {
            current[i] += weights[i]
            total += weights[i]
            if current[i] > current[best] { best = i }
        }
        current[best] -= total
        return best
    }
}

/// A consistent-hash ring: each target owns points in proportion to its weight, a key goes to
/// the first point at or after its hash whose target is allowed.
struct HashRing: Sendable {
    private let points: [(hash: UInt64, target: Int)]

    static let pointsPerWeight = 160

    init(targets: [(index: Int, url: String, weight: Int)]) {
        var points: [(hash: UInt64, target: Int)] = []
        for t in targets {
            for i in 0..<(Self.pointsPerWeight * t.weight) {
                points.append((Self.hash("\(t.url)#\(i)"), t.index))
            }
        }
        self.points = points.sorted { $0.hash < $1.hash }
    }

    func lookup(_ key: String, allowed: [Int]) -> Int? {
        guard !points.isEmpty else { return nil }
        let h = Self.hash(key)
        var low = 0, high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < h { low = mid + 1 } else { high = mid }
        }
        for step in 0..<points.count {
            let candidate = points[(low + step) % points.count].target
            if allowed.contains(candidate) { return candidate }
        }
        return nil
    }

    /// FNV-1a, then a 64-bit finaliser so nearby inputs spread over the ring.
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}
