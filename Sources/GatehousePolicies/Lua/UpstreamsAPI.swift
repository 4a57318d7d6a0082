import GatehouseCore
import GatehouseLua

/// Host functions behind the read-only `upstreams` table: the groups of upstreams.json with
/// their targets' live breaker and health state.
extension PolicyRuntime {
    func upstreamsAPI() -> [(String, HostFunction)] {
        [
            // upstreams_get(name) -> state table | nil
            ("upstreams_get", { [unowned self] L in
                guard let name = L.toString(at: 1) else { return .badArgument(1, "get", expected: "group name", state: L) }
                if let state = self.services.upstreams?.state(of: name) { L.push(json: state) } else { L.pushNil() }
                return .values(1)
            }),
            // upstreams_names() -> { name, ... }
            ("upstreams_names", { [unowned self] L in
                L.push(json: .array((self.services.upstreams?.groupNames ?? []).map { .string($0) }))
                return .values(1)
            }),
        ]
    }
}
