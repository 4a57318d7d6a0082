import NIOConcurrencyHelpers
import Synchronization

/// Whether the server is cutting connections because shutdown's grace period ran out (so a
/// request cancelled now was cut by shutdown, not abandoned by its client).
final class ShutdownState: Sendable {
    private let forcing = Atomic<Bool>(false)

    var isForcing: Bool { forcing.load(ordering: .relaxed) }

    func force() { forcing.store(true, ordering: .relaxed) }
}

/// Request tasks still running, so that shutdown returns only after the ones it cut have
/// ended (and logged it), not while they are still unwinding.
final class RequestsInFlight: Sendable {
    private let state = NIOLockedValueBox<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    func begin() { state.withLockedValue { $0.count += 1 } }

    func end() {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no request task is running.
    func drained() async {
        await withCheckedContinuation { continuation in
            let now: Bool = state.withLockedValue { state in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
