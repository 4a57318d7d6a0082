import GatehouseCore
import Synchronization
import Testing

@Suite struct TimeoutTests {
    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    /// The deadline ends the wait even when the operation ignores cancellation (a wait on an
    /// unstructured task, as a loader wait is): it is abandoned, not waited for.
    @Test func anOperationThatIgnoresCancellationIsAbandonedAtTheDeadline() async {
        let finished = Flag()
        let result = await withTimeout(.milliseconds(50)) { () -> Int in
            await Task.detached {
                try? await Task.sleep(for: .seconds(10))
                finished.value.store(true, ordering: .relaxed)
            }.value
            return 1
        }
        #expect(result == nil)
        let waited = finished.isSet
        #expect(!waited, "withTimeout waited for the operation")
    }

    @Test func aQuickOperationReturnsItsValue() async {
        #expect(await withTimeout(.seconds(30)) { 42 } == 42)
    }

    @Test func cancellingTheCallerEndsTheWait() async {
        let task = Task { await withTimeout(.seconds(30)) { () -> Int in
            await Task.detached { try? await Task.sleep(for: .seconds(10)) }.value
            return 1
        } }
        task.cancel()
        #expect(await task.value == nil)
    }
}
