import Synchronization

/// Runs `operation`, or gives up after `timeout` and returns nil. At the deadline the operation
/// is cancelled and abandoned: this returns then, whether or not the operation honours
/// cancellation (a task group would wait for it), and a late result is discarded.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    let race = TimeoutRace<T>()
    return await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            race.start(continuation)
            let work = Task {
                let value = await operation()
                race.finish(value)
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if race.finish(nil) { work.cancel() }
            }
            race.attach(work: work, timer: timer)
        }
    } onCancel: {
        race.cancel()
    }
}

/// Who completes a ``withTimeout(_:_:)`` first: the operation, the timer or a cancellation.
private final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T?, Never>?
        var done = false
        var cancelled = false
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T?, Never>) {
        let resumeNow = state.withLock { s -> Bool in
            if s.cancelled { s.done = true; return true }
            s.continuation = continuation
            return false
        }
        if resumeNow { continuation.resume(returning: nil) }
    }

    func attach(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let cancel = state.withLock { s -> Bool in
            s.work = work
            s.timer = timer
            return s.done
        }
        if cancel {
            work.cancel()
            timer.cancel()
        }
    }

    /// Completes with `value` unless something else did first; true if this call completed it.
    @discardableResult
    func finish(_ value: T?) -> Bool {
        let (continuation, timer): (CheckedContinuation<T?, Never>?, Task<Void, Never>?) = state.withLock { s in
            guard !s.done else { return (nil, nil) }
            s.done = true
            defer { s.continuation = nil }
            return (s.continuation, value != nil ? s.timer : nil)
        }
        guard let continuation else { return false }
        timer?.cancel()
        continuation.resume(returning: value)
        return true
    }

    func cancel() {
        let (continuation, work, timer): (CheckedContinuation<T?, Never>?, Task<Void, Never>?, Task<Void, Never>?) = state.withLock { s in
            s.cancelled = true
            guard !s.done else { return (nil, nil, nil) }
            s.done = true
            defer { s.continuation = nil }
            return (s.continuation, s.work, s.timer)
        }
        work?.cancel()
        timer?.cancel()
        continuation?.resume(returning: nil)
    }
}
