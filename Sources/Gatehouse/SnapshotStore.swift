public import GatehousePolicies
import NIOConcurrencyHelpers

/// Holds the generation that new requests use. Publishing is one atomic swap; requests that
/// already started keep the snapshot they read.
public final class SnapshotStore: Sendable {
    private let box: NIOLockedValueBox<Snapshot>

    public init(_ initial: Snapshot) {
        box = NIOLockedValueBox(initial)
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    public func publish(_ snapshot: Snapshot) {
        // Never replace a newer generation with an older one, whatever order publishes come in.
        box.withLockedValue { if snapshot.generation > $0.generation { $0 = snapshot } }
    }
}
