public import GatehousePolicies
public import GatehouseUpstreams
import NIOConcurrencyHelpers

/// Holds the generation that new requests use: the snapshot and the upstream groups built
/// from it. Publishing is one atomic swap of both; requests that already started keep what
/// they read.
public final class SnapshotStore: Sendable {
    /// What a request serves with.
    public struct Served: Sendable {
        public let snapshot: Snapshot
        public let groups: UpstreamGroupSet
    }

    private let box: NIOLockedValueBox<Served>

    public init(_ initial: Snapshot, groups: UpstreamGroupSet = UpstreamGroupSet()) {
        box = NIOLockedValueBox(Served(snapshot: initial, groups: groups))
    }

    public var current: Snapshot { box.withLockedValue { $0.snapshot } }

    /// The snapshot and its groups, read together.
    public var served: Served { box.withLockedValue { $0 } }

    public func publish(_ snapshot: Snapshot, groups: UpstreamGroupSet = UpstreamGroupSet()) {
        // Never replace a newer generation with an older one, whatever order publishes come in.
        box.withLockedValue { if snapshot.generation > $0.snapshot.generation { $0 = Served(snapshot: snapshot, groups: groups) } }
    }
}
