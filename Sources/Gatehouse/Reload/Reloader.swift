public import Foundation
public import GatehousePolicies
import GatehouseUpstreams
import Logging
import NIOCore

/// Loads new generations and publishes them, strictly one load at a time.
///
/// An actor alone does not serialise reloads: it is reentrant across `await Snapshot.load`, so
/// two reloads in flight could both number themselves "current + 1" and the older publish
/// last. Instead every request joins a queue drained by one loop: a load starts only after the
/// previous one ended, requests that arrive during a load are coalesced into the next one (which
/// reads the files as they are by then), and a generation is numbered from the one serving when
/// its load starts — with one load at a time, that number is only taken once it has loaded.
///
/// A generation is published only after everything in it loaded and validated (config, every
/// plugin compiled and its module body run on every VM); otherwise the current one keeps
/// serving and the error is kept for the status endpoint until a good generation replaces it.
public actor Reloader {
    let store: SnapshotStore
    let configDirectory: String
    let pluginDirectories: [String]
    let loops: [any EventLoop]
    let logger: Logger
    let environment: [String: String]?
    let services: RuntimeServices
    let groups: UpstreamGroups
    public private(set) var status: ReloadStatus
    /// Requests waiting for the next load, with the reasons they gave.
    private var waiting: [(reason: String, continuation: CheckedContinuation<Result<Int, SnapshotError>, Never>)] = []
    private var draining = false

    public init(server: GatewayServer) {
        self.store = server.store
        self.configDirectory = server.configDirectory
        self.pluginDirectories = server.pluginDirectories
        self.loops = Array(server.eventLoopGroup.makeIterator())
        self.logger = server.logger
        self.environment = server.environment
        self.services = server.services
        self.groups = server.groups
        let current = server.store.current
        self.status = ReloadStatus(generation: current.generation, loadedAt: current.loadedAt, reloads: 0, lastError: nil)
    }

    /// Asks for a reload and waits for the load that serves it: one that started after this
    /// call. Returns the generation serving afterwards, or the error that kept the previous one.
    @discardableResult
    public func reload(reason: String) async -> Result<Int, SnapshotError> {
        await withCheckedContinuation { continuation in
            waiting.append((reason, continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    /// The one loop that loads: takes every request queued so far, loads once for all of them,
    /// answers them, and goes on while more arrived meanwhile.
    private func drain() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            var reasons: [String] = []
            for item in batch where !reasons.contains(item.reason) { reasons.append(item.reason) }
            let result = await loadOnce(reason: reasons.joined(separator: "; "))
            for item in batch { item.continuation.resume(returning: result) }
        }
        draining = false
    }

    private func loadOnce(reason: String) async -> Result<Int, SnapshotError> {
        let next = store.current.generation + 1
        let started = ContinuousClock.now
        do {
            let snapshot = try await Snapshot.load(
                configDirectory: configDirectory, pluginDirectories: pluginDirectories, loops: loops,
                generation: next, logger: logger, environment: environment, services: services)
            store.publish(snapshot, groups: groups.install(snapshot.config.upstreams, settings: snapshot.config.settings))
            status = ReloadStatus(generation: next, loadedAt: snapshot.loadedAt, reloads: status.reloads + 1, lastError: nil)
            logger.info("reloaded configuration", metadata: [
                "generation": .stringConvertible(next), "reason": .string(reason),
                "duration": .string("\(ContinuousClock.now - started)"),
            ])
            for warning in snapshot.config.warnings { logger.warning("\(warning)") }
            return .success(next)
        } catch {
            status.lastError = ReloadStatus.Failure(at: Date(), reason: reason, lines: error.lines)
            logger.error("reload failed; generation \(status.generation) keeps serving", metadata: [
                "reason": .string(reason), "errors": .string(error.description),
            ])
            return .failure(error)
        }
    }
}

/// What the admin status endpoint reports.
public struct ReloadStatus: Sendable, Codable {
    public struct Failure: Sendable, Codable {
        public let at: Date
        public let reason: String
        /// One line per problem, each naming file and line.
        public let lines: [String]
    }

    public var generation: Int
    public var loadedAt: Date
    /// Successful reloads since start.
    public var reloads: Int
    /// The last failed reload, until a later one succeeds.
    public var lastError: Failure?
}
