public import GatehouseCore
public import GatehouseLua
public import Logging
public import GatehouseRedis
public import NIOCore
import Synchronization

/// Runtimes (VMs) alive in the process: lets tests prove that old generations are freed.
private let liveRuntimes = Atomic<Int>(0)

/// One Lua VM with the plugins of one configuration generation loaded, bound to one event loop.
///
/// Every method that touches the VM runs on `loop` (``onLoop(_:)`` hops there when needed), so
/// the Lua state is only ever used by that loop's thread.
public final class PolicyRuntime: @unchecked Sendable {
    public let vm: LuaVM
    public let loop: any EventLoop
    let sources: PluginSources
    let environment: ConfigEnvironment
    let logger: Logger
    let maxBufferedBodyBytes: Int
    /// Caches, loaders and the HTTP client behind `cache`, `loader` and `http`.
    public let services: RuntimeServices
    /// The Redis of this generation's gatehouse.json, if any (Redis zones, `ratelimit.check`
    /// with `store = "redis"`).
    let redis: RedisClient?
    /// Load functions of the loaders this VM's modules created, by loader name.
    var loaderFunctions: [String: Int32] = [:]
    /// `transformPath` functions of upstreams.json, by "module#export".
    var transformFunctions: [String: Int32] = [:]
    /// `rateLimitBy: "function"` key functions, by rate-limit policy name.
    var keyFunctions: [String: Int32] = [:]

    /// Requests that Lua has seen and that have not ended, by Lua handle.
    var requests: [Int64: RequestState] = [:]
    var nextRid: Int64 = 1
    /// The request whose invocation is running right now (set only during a resume).
    var current: RequestState?
    var currentCoroutine: LuaState?

    // Registry references to the prelude's internals.
    var objectsRef: Int32 = 0
    var liveRef: Int32 = 0
    var runInboundRef: Int32 = 0
    var runOutboundRef: Int32 = 0
    var runHandlerRef: Int32 = 0
    var runLoaderRef: Int32 = 0
    var runKeyFunctionRef: Int32 = 0
    var requireRef: Int32 = 0

    /// A Lua function ready to be invoked, with its options table and budget.
    struct Compiled {
        let functionRef: Int32
        let optionsRef: Int32
        var budget: LuaBudget?
    }
    var policies: [String: Compiled] = [:]
    var handlers: [Int: Compiled] = [:]
    /// `name` and `version` declared by each loaded module (module name → values).
    public internal(set) var moduleInfo: [String: (name: String?, version: String?)] = [:]

    /// Creates the VM on the calling thread (call it on `loop`), installs the policy API and
    /// loads every Lua policy and handler of `config`.
    public init(
        config: GatewayConfig, sources: PluginSources, loop: any EventLoop, logger: Logger, services: RuntimeServices, redis: RedisClient? = nil
    ) throws(PolicyLoadError) {
        self.services = services
        self.redis = redis
        do {
            vm = try LuaVM(memoryLimit: config.settings.luaMemoryLimitBytes)
        } catch {
            throw PolicyLoadError(message: "cannot create a Lua VM")
        }
        vm.budget = LuaBudget(
            instructions: config.settings.luaInstructionBudget,
            timeNanoseconds: UInt64(config.settings.luaTimeBudgetMilliseconds) * 1_000_000,
            wallNanoseconds: UInt64(config.settings.luaWallClockBudgetMilliseconds) * 1_000_000)
        self.loop = loop
        self.sources = sources
        self.environment = config.environment
        self.logger = logger
        self.maxBufferedBodyBytes = config.settings.maxBufferedBodyBytes
        // Counted from here: if loading throws below, deinit still runs (self is initialized).
        liveRuntimes.add(1, ordering: .relaxed)
        try installPrelude()
        try loadPolicies(config)
    }

    deinit {
        liveRuntimes.subtract(1, ordering: .relaxed)
    }

    /// How many runtimes (Lua VMs with a generation loaded) exist in the process right now.
    public static var liveCount: Int { liveRuntimes.load(ordering: .relaxed) }

    // MARK: Running on the loop

    /// Runs `body` on this runtime's event loop (inline when already there).
    public func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        if loop.inEventLoop { return body() }
        return await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }

    /// The Lua handle of `state`, registering it on first use.
    func handle(for state: RequestState) -> Int64 {
        if state.rid == 0 {
            state.rid = nextRid
            nextRid += 1
            requests[state.rid] = state
        }
        return state.rid
    }

    /// Ends the request's life in Lua: its objects become dead handles and are released.
    public func finish(_ state: RequestState) async {
        guard state.rid != 0 else { return }
        await onLoop { self.release(state) }
    }

    func release(_ state: RequestState) {
        let rid = state.rid
        guard rid != 0, requests.removeValue(forKey: rid) != nil else { return }
        let L = vm.main
        func forget(in table: Int32) {
            L.pushRef(table)
            L.push(rid)
            L.pushNil()
            L.rawSet(-3)
            L.pop()
        }
        forget(in: liveRef)
        forget(in: objectsRef)
    }

    // MARK: Reading Lua state for handlers

    /// Values of `context.custom[name]` for this request, as text (strings and numbers only).
    public func customValues(_ names: [String], state: RequestState) async -> [String: String] {
        guard state.rid != 0, !names.isEmpty else { return [:] }
        return await onLoop {
            let L = self.vm.main
            var out: [String: String] = [:]
            L.pushRef(self.objectsRef)
            L.push(state.rid)
            guard L.rawGet(-2) == .table, L.rawGet(-1, field: "custom") == .table else {
                L.setTop(0)
                return out
            }
            for name in names {
                L.rawGet(-1, field: name)
                switch L.type(at: -1) {
                case .string: out[name] = L.toString(at: -1)
                case .number: out[name] = L.isInteger(at: -1) ? String(L.toInteger(at: -1)!) : String(L.toNumber(at: -1)!)
                default: break
                }
                L.pop()
            }
            L.setTop(0)
            return out
        }
    }

    /// The request a host function was called for (argument 1 is its handle).
    func state(_ L: LuaState, at index: Int32 = 1) -> RequestState? {
        guard let rid = L.toInteger(at: index) else { return nil }
        return requests[rid]
    }

    /// The message (request 0, response k) a host function addresses.
    func message(_ L: LuaState) -> (RequestState, Int)? {
        guard let state = state(L), let index = L.toInteger(at: 2) else { return nil }
        guard index == 0 || (index > 0 && Int(index) <= state.responses.count) else { return nil }
        return (state, Int(index))
    }
}
