/// Runs `operation`, or gives up after `timeout` and returns nil. The operation is cancelled
/// (cooperatively) when the time is up; work that ignores cancellation finishes unobserved.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
