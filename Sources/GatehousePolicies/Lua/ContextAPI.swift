import GatehouseCore
import GatehouseLua
import Logging

/// Host functions behind `context` (requestId, route) and `context.log` / `print`.
extension PolicyRuntime {
    func contextAPI() -> [(String, HostFunction)] {
        [
            ("context_get", { [unowned self] L in
                guard let state = self.state(L) else { return .error("context used after its request ended") }
                switch L.toString(at: 2) ?? "" {
                case "requestId": L.push(state.requestId)
                case "route":
                    L.newTable(recordCapacity: 3)
                    L.push(state.route.template.text)
                    L.rawSet(-2, field: "path")
                    L.push(state.route.method.rawValue)
                    L.rawSet(-2, field: "method")
                    if let id = state.route.operationId {
                        L.push(id)
                        L.rawSet(-2, field: "operationId")
                    }
                case "policyName":
                    if let p = state.currentPolicy { L.push(p) } else { L.pushNil() }
                default: L.pushNil()
                }
                return .values(1)
            }),
            // log(rid, level, message, fields?)
            ("log", { [unowned self] L in
                guard let state = self.state(L) else { return .error("context.log used after its request ended") }
                let level: Logger.Level
                switch L.toString(at: 2) ?? "info" {
                case "debug": level = .debug
                case "warn": level = .warning
                case "error": level = .error
                default: level = .info
                }
                // The prelude has already applied tostring (a host function never runs Lua code).
                let message = L.plainText(at: 3) ?? "(\(L.typeName(at: 3)) value)"
                var metadata: Logger.Metadata = ["request-id": .string(state.requestId), "policy": .string(state.currentPolicy ?? "?")]
                if L.type(at: 4) == .table, case .success(.object(let fields)) = L.readJSON(at: 4) {
                    for (key, value) in fields { metadata[key] = value.loggable }
                }
                self.logger.log(level: level, "\(message)", metadata: metadata)
                return .values(0)
            }),
            ("print", { [unowned self] L in
                var metadata: Logger.Metadata = [:]
                if let state = self.current {
                    metadata["request-id"] = .string(state.requestId)
                    metadata["policy"] = .string(state.currentPolicy ?? "?")
                }
                self.logger.info("\(L.toString(at: 1) ?? "")", metadata: metadata)
                return .values(0)
            }),
        ]
    }
}

extension JSONValue {
    /// As a log metadata value.
    var loggable: Logger.MetadataValue {
        switch self {
        case .string(let s): .string(s)
        case .array(let a): .array(a.map(\.loggable))
        case .object(let o): .dictionary(o.mapValues(\.loggable))
        default: .string(String(decoding: serialized(), as: UTF8.self))
        }
    }
}
