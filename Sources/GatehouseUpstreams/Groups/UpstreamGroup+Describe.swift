public import GatehouseCore
public import NIOCore

extension UpstreamGroup {
    /// The group's live state as JSON, for the Lua `upstreams` API and the admin endpoint:
    /// name, balancing, whether any target is available, and per target its URL, weight,
    /// priority, breaker state, health, requests in flight and consecutive failures.
    public func describe(at now: NIODeadline = .now()) -> JSONValue {
        let targets: [JSONValue] = self.targets.map { target in
            let r = target.health.report(at: now)
            return .object([
                "url": .string(target.config.url),
                "weight": .int(Int64(target.config.weight)),
                "priority": .int(Int64(target.config.priority)),
                "breaker": .string(r.breaker.rawValue),
                "healthy": .bool(r.healthy),
                "available": .bool(target.health.isAvailable(at: now)),
                "outstanding": .int(Int64(r.outstanding)),
                "consecutiveFailures": .int(Int64(r.consecutiveFailures)),
            ])
        }
        let balancing: String
        switch config.loadBalancing {
        case .roundRobin: balancing = "round-robin"
        case .leastOutstanding: balancing = "least-outstanding"
        case .consistentHash: balancing = "consistent-hash"
        }
        return .object([
            "name": .string(name),
            "loadBalancing": .string(balancing),
            "available": .bool(self.targets.contains { $0.health.isAvailable(at: now) }),
            "targets": .array(targets),
        ])
    }
}
