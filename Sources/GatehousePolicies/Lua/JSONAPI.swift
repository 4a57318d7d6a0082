import GatehouseCore
import GatehouseLua

/// Host functions behind `json.encode` / `json.decode`.
extension PolicyRuntime {
    func jsonAPI() -> [(String, HostFunction)] {
        [
            ("json_encode", { L in
                switch L.readJSON(at: 1) {
                case .success(let value):
                    value.serialized().withUnsafeBytes { L.push(bytes: $0) }
                    return .values(1)
                case .failure(let error):
                    return .error("json.encode: \(error)")
                }
            }),
            // json_decode(text) -> value | nil, error
            ("json_decode", { L in
                guard L.type(at: 1) == .string else { return .badArgument(1, "decode", expected: "string", state: L) }
                let parsed = L.withStringBytes(at: 1) { bytes in Result { try JSONValue.parse(bytes) } }!
                switch parsed {
                case .success(let value):
                    L.push(json: value, topLevel: false)
                    return .values(1)
                case .failure:
                    L.pushNil()
                    L.push("invalid JSON")
                    return .values(2)
                }
            }),
        ]
    }
}
