public import Foundation
public import GatehouseCore
import GatehouseRedis
public import Logging
public import NIOCore

/// One immutable, validated generation of everything loaded from `config/` and `plugins/`,
/// with a policy runtime (Lua VM) per event loop. A request keeps the snapshot it started with.
public final class Snapshot: Sendable {
    public let generation: Int
    public let config: GatewayConfig
    public let routes: RouteTable
    public let sources: PluginSources
    public let loadedAt: Date
    /// Every plugin file of this generation, with what its module declares.
    public let plugins: [PluginInfo]
    let inbound: [[InboundStep]]
    let outbound: [[OutboundStep]]
    private let runtimes: [ObjectIdentifier: PolicyRuntime]
    let logger: Logger

    enum InboundStep: Sendable {
        case lua(name: String, failOpen: Bool)
        case builtIn(any BuiltInInboundPolicy)
        /// A rate limit whose tenant a Lua key function picks.
        case keyedRateLimit(RateLimitInbound)
        /// `set-headers-inbound`.
        case setHeaders(SetHeadersPolicy)
    }

    enum OutboundStep: Sendable {
        case lua(name: String, failOpen: Bool)
        /// `set-headers-outbound`.
        case setHeaders(SetHeadersPolicy)
    }

    /// Loads config and plugins and creates a runtime on every loop; throws every problem found.
    /// `environment` replaces the process environment for `$env(...)` (tests use it).
    /// Nothing is published by this call: the caller swaps the snapshot in only on success.
    public static func load(
        configDirectory: String, pluginDirectories: [String], loops: [any EventLoop], generation: Int, logger: Logger,
        environment: [String: String]? = nil, services: RuntimeServices = RuntimeServices(fetcher: nil)
    ) async throws(SnapshotError) -> Snapshot {
        let config: GatewayConfig
        do {
            config = try GatewayConfig.load(directory: configDirectory, processEnvironment: environment)
        } catch {
            throw SnapshotError(lines: error.errors.map(\.description))
        }
        let sources: PluginSources
        do {
            sources = try PluginSources(directories: pluginDirectories)
        } catch {
            throw SnapshotError(lines: [error.description])
        }
        let redis: RedisClient?
        do {
            redis = try config.settings.redis.map { settings throws(ConfigError) in try services.redisClient(settings, loops: loops, logger: logger) }
        } catch {
            throw SnapshotError(lines: [error.description])
        }
        var builtIns: [String: any BuiltInInboundPolicy] = [:]
        var headerPolicies: [String: SetHeadersPolicy] = [:]
        for policy in config.policies.values.sorted(by: { $0.name < $1.name }) {
            do {
                switch policy.policyType {
                case "api-key-inbound":
                    builtIns[policy.name] = try APIKeyInbound(name: policy.name, options: policy.options, consumers: config.consumers, location: policy.location)
                case "rate-limit-inbound":
                    builtIns[policy.name] = try RateLimitInbound(
                        name: policy.name, options: policy.options, store: services.rateLimits, redis: redis.map(RedisRateLimiter.init),
                        services: services, logger: logger, location: policy.location)
                case "set-headers-inbound", "set-headers-outbound":
                    headerPolicies[policy.name] = try SetHeadersPolicy(name: policy.name, options: policy.options, location: policy.location)
                case "request-size-limit-inbound":
                    builtIns[policy.name] = try RequestSizeLimitInbound(name: policy.name, options: policy.options, location: policy.location)
                case "require-user-inbound":
                    builtIns[policy.name] = try RequireUserInbound(name: policy.name, options: policy.options, location: policy.location)
                case "ip-restriction-inbound":
                    builtIns[policy.name] = try IPRestrictionInbound(name: policy.name, options: policy.options, location: policy.location)
                case "jwt-inbound":
                    builtIns[policy.name] = try await JWTInbound(
                        name: policy.name, options: policy.options, services: services, logger: logger, location: policy.location)
                default:
                    break
                }
            } catch {
                throw SnapshotError(lines: [error.description])
            }
        }
        let inbound: [[InboundStep]] = config.routes.map { route in
            route.inbound.map { name in
                if let headers = headerPolicies[name] { return .setHeaders(headers) }
                if let limit = builtIns[name] as? RateLimitInbound, limit.usesKeyFunction { return .keyedRateLimit(limit) }
                if let builtIn = builtIns[name] { return .builtIn(builtIn) }
                return .lua(name: name, failOpen: config.policies[name]?.failOpen ?? false)
            }
        }
        let outbound: [[OutboundStep]] = config.routes.map { route in
            route.outbound.map { name in
                if let headers = headerPolicies[name] { return .setHeaders(headers) }
                return .lua(name: name, failOpen: config.policies[name]?.failOpen ?? false)
            }
        }
        var runtimes: [ObjectIdentifier: PolicyRuntime] = [:]
        for loop in loops {
            let result: Result<PolicyRuntime, PolicyLoadError>
            do {
                result = try await loop.submit {
                    Result { () throws(PolicyLoadError) in try PolicyRuntime(config: config, sources: sources, loop: loop, logger: logger, services: services, redis: redis) }
                }.get()
            } catch {
                throw SnapshotError(lines: ["cannot create a Lua runtime: the event loop is shutting down"])
            }
            switch result {
            case .success(let runtime): runtimes[ObjectIdentifier(loop)] = runtime
            case .failure(let error): throw SnapshotError(lines: [error.description])
            }
        }
        return Snapshot(
            generation: generation, config: config, routes: RouteTable(config.routes), sources: sources,
            inbound: inbound, outbound: outbound, runtimes: runtimes, logger: logger)
    }

    private init(
        generation: Int, config: GatewayConfig, routes: RouteTable, sources: PluginSources,
        inbound: [[InboundStep]], outbound: [[OutboundStep]], runtimes: [ObjectIdentifier: PolicyRuntime], logger: Logger
    ) {
        self.generation = generation
        self.config = config
        self.routes = routes
        self.sources = sources
        self.inbound = inbound
        self.outbound = outbound
        self.runtimes = runtimes
        self.logger = logger
        self.loadedAt = Date()
        let info = runtimes.values.first?.moduleInfo ?? [:]
        self.plugins = sources.files.sorted(by: { $0.key < $1.key }).map { name, file in
            PluginInfo(file: file.chunkName, directory: file.directory, name: info[name]?.name ?? nil, version: info[name]?.version ?? nil, sha256: file.sha256)
        }
    }

    /// The runtime bound to `loop` (requests are pinned to their connection's loop).
    public func runtime(for loop: any EventLoop) -> PolicyRuntime {
        runtimes[ObjectIdentifier(loop)] ?? runtimes.values.first!
    }

    public func hasOutboundPolicies(route: Int) -> Bool { !outbound[route].isEmpty }
}

/// Why a generation could not be loaded: one line per problem, each naming file and place.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public let lines: [String]
    public var description: String { lines.joined(separator: "\n") }
}
