import GatehouseLua

/// Host function behind `require`: module text from the generation's plugin sources (never
/// from disk at request time, never outside the plugin directories).
extension PolicyRuntime {
    func moduleAPI() -> [(String, HostFunction)] {
        [
            ("module_source", { [unowned self] L in
                guard let name = L.toString(at: 1) else { return .badArgument(1, "require", expected: "string", state: L) }
                if let file = self.sources.resolve(name) {
                    L.push(file.source)
                    L.push(file.chunkName)
                } else {
                    L.pushNil()
                    L.push("module '\(name)' not found in the plugin directories")
                }
                return .values(2)
            })
        ]
    }
}
