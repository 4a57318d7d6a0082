import GatehouseCore
import GatehouseLua

/// Host functions behind `loader.new(name, fn, {ttl, timeout})` and `loader:get(key)`.
extension PolicyRuntime {
    func loaderAPI() -> [(String, HostFunction)] {
        [
            ("loader_register", { [unowned self] L in
                guard let name = L.toString(at: 1), L.type(at: 2) == .function else {
                    return .error("loader.new expects (name, function(key) ... end, {ttl=, timeout=})")
                }
                var ttl = 60.0, timeout = 10.0
                if L.type(at: 3) == .table {
                    if L.rawGet(3, field: "ttl") == .number, let v = L.toNumber(at: -1), v > 0 { ttl = v }
                    L.pop()
                    if L.rawGet(3, field: "timeout") == .number, let v = L.toNumber(at: -1), v > 0 { timeout = v }
                    L.pop()
                }
                L.pushValue(at: 2)
                if let old = self.loaderFunctions[name] { L.unref(old) }
                self.loaderFunctions[name] = L.ref()
                self.services.loaders.register(name, options: .init(
                    ttl: .milliseconds(Int64(ttl * 1000)), timeout: .milliseconds(Int64(timeout * 1000))))
                return .values(0)
            }),
            // loader_get(name, key) -> value | nil, error (waits only when nothing is cached)
            ("loader_get", { [unowned self] L in
                guard let name = L.toString(at: 1), let key = L.toString(at: 2) else { return .badArgument(1, "get", expected: "string key", state: L, slot: 2) }
                guard self.loaderFunctions[name] != nil else { return .error("loader '\(name)' is not defined") }
                let loaders = self.services.loaders
                switch loaders.lookup(name, key) {
                case .fresh(let value):
                    L.push(json: value)
                    return .values(1)
                case .stale(let value, let refresh):
                    if refresh {
                        _ = loaders.begin(name, key) { Task { await self.runLoad(name, key: key) } }
                    }
                    L.push(json: value)
                    return .values(1)
                case .wait(let load):
                    if let refusal = self.refuseWait(L, "loader:get") { return refusal }
                    self.current!.pending = .awaitLoad(load)
                    return .yield
                case .start:
                    if let refusal = self.refuseWait(L, "loader:get") { return refusal }
                    let load = loaders.begin(name, key) { Task { await self.runLoad(name, key: key) } }
                    self.current!.pending = .awaitLoad(load)
                    return .yield
                }
            }),
        ]
    }
}
