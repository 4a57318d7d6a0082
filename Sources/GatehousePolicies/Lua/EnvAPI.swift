import GatehouseLua

/// Host function behind the read-only `env` table.
extension PolicyRuntime {
    func envAPI() -> [(String, HostFunction)] {
        [
            ("env_get", { [unowned self] L in
                if let name = L.toString(at: 1), let value = self.environment.values[name] { L.push(value) } else { L.pushNil() }
                return .values(1)
            })
        ]
    }
}
