public import GatehouseCore
import HTTPTypes
public import Logging
import NIOCore
import NIOConcurrencyHelpers

/// The upstream groups of one generation, by name.
public struct UpstreamGroupSet: Sendable {
    public let groups: [String: UpstreamGroup]
    /// In config order.
    public let ordered: [UpstreamGroup]

    public init(_ groups: [UpstreamGroup] = []) {
        ordered = groups
        var byName: [String: UpstreamGroup] = [:]
        for g in groups { byName[g.name] = g }
        self.groups = byName
    }

    public subscript(name: String) -> UpstreamGroup? { groups[name] }
}

/// Process-wide owner of target state: every generation's groups are built here, and a target
/// keeps its breaker and health across a reload while its group still lists its URL. Also runs
/// the active health checks of the generation installed last.
public final class UpstreamGroups: Sendable {
    private struct Key: Hashable {
        let group: String
        let url: String
    }

    private let client: UpstreamClient?
    private let logger: Logger
    private let health = NIOLockedValueBox<[Key: TargetHealth]>([:])
    private let checks = NIOLockedValueBox<[Task<Void, Never>]>([])
    private let latest = NIOLockedValueBox((current: UpstreamGroupSet(), previous: UpstreamGroupSet()))

    /// The set installed last: what `http.fetch` by group name and the Lua `upstreams` table
    /// use (a request's forwarding uses the set published with its snapshot).
    public var current: UpstreamGroupSet { latest.withLockedValue { $0.current } }

    /// A group of the set installed last or, for a request that started before the last
    /// reload and names a group that reload removed, of the one before.
    public func group(named name: String) -> UpstreamGroup? {
        latest.withLockedValue { $0.current[name] ?? $0.previous[name] }
    }

    /// `client` sends the active checks (nil: no active checks, as in `gatehouse test`).
    public init(client: UpstreamClient?, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Builds the groups of `config`, reusing the state of targets that were there before, and
    /// restarts the active checks for them. Call once a generation has loaded, before it is
    /// published.
    public func install(_ config: UpstreamsConfig, settings: GatewaySettings) -> UpstreamGroupSet {
        let set = health.withLockedValue { known in
            var kept: [Key: TargetHealth] = [:]
            let groups = config.groups.map { groupConfig in
                let deadline = Self.probeDeadline(groupConfig, settings)
                return UpstreamGroup(config: groupConfig) { target in
                    let key = Key(group: groupConfig.name, url: target.url)
                    let state: TargetHealth
                    if let existing = known[key] {
                        existing.reconfigure(breaker: groupConfig.circuitBreaker, probeDeadline: deadline, activeCheck: groupConfig.activeCheck != nil)
                        state = existing
                    } else {
                        state = TargetHealth(breaker: groupConfig.circuitBreaker, probeDeadline: deadline)
                    }
                    kept[key] = state
                    return state
                }
            }
            // Targets no longer listed are forgotten (the previous generation still holds
            // them while its requests finish).
            known = kept
            return UpstreamGroupSet(groups)
        }
        startChecks(set, settings: settings)
        latest.withLockedValue { $0 = (set, $0.current) }
        return set
    }

    /// Stops the active checks.
    public func shutdown() {
        let running = checks.withLockedValue { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in running { task.cancel() }
    }

    /// A probe may hold a half-open slot as long as a request can take: connect plus response
    /// timeout, so a probe that never reports frees its slot by then.
    static func probeDeadline(_ group: UpstreamGroupConfig, _ settings: GatewaySettings) -> TimeAmount {
        let connect = group.connectTimeoutMilliseconds ?? settings.connectTimeoutMilliseconds
        let response = group.responseTimeoutMilliseconds ?? settings.upstreamTimeoutMilliseconds
        return .milliseconds(Int64(connect + response))
    }

    private func startChecks(_ set: UpstreamGroupSet, settings: GatewaySettings) {
        var tasks: [Task<Void, Never>] = []
        if let client {
            for group in set.ordered {
                guard let check = group.config.activeCheck else { continue }
                let logger = self.logger
                tasks.append(Task {
                    while !Task.isCancelled {
                        await withTaskGroup(of: Void.self) { probes in
                            for target in group.targets {
                                probes.addTask { await Self.probe(target, group: group.name, check: check, client: client, logger: logger) }
                            }
                        }
                        try? await Task.sleep(for: .milliseconds(check.intervalMilliseconds))
                    }
                })
            }
        }
        let previous = checks.withLockedValue { running in
            defer { running = tasks }
            return running
        }
        for task in previous { task.cancel() }
    }

    /// One active check of one target: a GET of the check path; 2xx and 3xx are good.
    static func probe(_ target: UpstreamGroup.Target, group: String, check: ActiveHealthCheck, client: UpstreamClient, logger: Logger) async {
        let timeout = TimeAmount.milliseconds(Int64(check.timeoutMilliseconds))
        let request = UpstreamClient.Request(
            url: PathJoin.join(target.config.url, check.path), method: .get, headers: [.userAgent: "gatehouse-health-check"], body: .empty,
            connectTimeout: timeout, responseTimeout: timeout)
        var ok = false
        do {
            let response = try await client.engine.execute(request)
            if case .stream(let body) = response.body { _ = try await body.collect(limit: 1 << 20) }
            ok = (200..<400).contains(response.status.code)
        } catch {
            ok = false
        }
        guard !Task.isCancelled else { return }
        let before = target.health.report(at: .now()).healthy
        let after = target.health.recordCheck(ok: ok, check: check)
        if before != after {
            logger.warning("upstream target \(after ? "healthy" : "unhealthy") by active check", metadata: [
                "group": .string(group), "target": .string(target.config.url),
            ])
        }
    }
}
