import GatehouseCore
import NIOConcurrencyHelpers

/// State of every background loader (`loader.new(name, fn, {ttl, timeout})`), shared by all VMs
/// and kept across reloads: the last good value per key, when it goes stale, and the one load
/// in flight per key. The Lua load function itself lives in each VM; the VM of whichever request
/// starts a load runs it.
final class LoaderRegistry: Sendable {
    struct Options: Sendable {
        var ttl: Duration
        var timeout: Duration
    }

    typealias Load = Task<Result<JSONValue, FetchFailure>, Never>

    private struct Slot {
        var value: JSONValue?
        var staleAt: ContinuousClock.Instant? // set with the first value
        var inflight: Load?
    }

    private let clock: ServiceClock
    private let state = NIOLockedValueBox<(options: [String: Options], slots: [String: [String: Slot]])>(([:], [:]))

    init(clock: ServiceClock = .system) {
        self.clock = clock
    }

    func register(_ name: String, options: Options) {
        state.withLockedValue { $0.options[name] = options }
    }

    func options(_ name: String) -> Options? { state.withLockedValue { $0.options[name] } }

    enum Lookup {
        /// A value younger than the TTL.
        case fresh(JSONValue)
        /// An older value: served now; `refresh` is set when this caller must start the one refresh.
        case stale(JSONValue, refresh: Bool)
        /// Nothing cached: wait for this load (started by this caller when `started`).
        case wait(Load)
        case start
    }

    /// Decides, atomically across VMs, what a `get` does. When it returns `.start` or
    /// `.stale(refresh: true)` the caller must call ``begin(_:_:_:)`` with its load.
    func lookup(_ name: String, _ key: String) -> Lookup {
        let now = clock.now
        return state.withLockedValue { s in
            let slot = s.slots[name]?[key] ?? Slot()
            if let value = slot.value {
                if let staleAt = slot.staleAt, now < staleAt { return .fresh(value) }
                if slot.inflight != nil { return .stale(value, refresh: false) }
                return .stale(value, refresh: true)
            }
            if let inflight = slot.inflight { return .wait(inflight) }
            return .start
        }
    }

    /// Records the load a caller started, unless another caller got there first (then that
    /// one is returned to wait for).
    func begin(_ name: String, _ key: String, _ load: () -> Load) -> Load {
        state.withLockedValue { s in
            var slot = s.slots[name]?[key] ?? Slot()
            if let existing = slot.inflight { return existing }
            let task = load()
            slot.inflight = task
            s.slots[name, default: [:]][key] = slot
            return task
        }
    }

    /// Stores a load's outcome: a success replaces the value; a failure keeps the last good one.
    func finish(_ name: String, _ key: String, _ result: Result<JSONValue, FetchFailure>) {
        let now = clock.now
        state.withLockedValue { s in
            var slot = s.slots[name]?[key] ?? Slot()
            slot.inflight = nil
            if case .success(let value) = result {
                slot.value = value
                slot.staleAt = now + (s.options[name]?.ttl ?? .seconds(60))
            }
            s.slots[name, default: [:]][key] = slot
        }
    }
}
