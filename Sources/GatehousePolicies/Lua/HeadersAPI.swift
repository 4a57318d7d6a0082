import GatehouseLua
import HTTPTypes

/// Host functions behind header objects (`request.headers`, `response.headers`).
/// Names are case-insensitive; values containing CR, LF or NUL are refused so a policy cannot
/// split a header.
extension PolicyRuntime {
    func headersAPI() -> [(String, HostFunction)] {
        [
            ("headers_get", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("headers used after their request ended") }
                guard let name = L.toString(at: 3), let field = HTTPField.Name(name) else { return .values(0) }
                let fields = index == 0 ? state.headers : state.responses[index - 1].headers
                if let value = fields[field] { L.push(value) } else { L.pushNil() }
                return .values(1)
            }),
            ("headers_get_all", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("headers used after their request ended") }
                guard let name = L.toString(at: 3), let field = HTTPField.Name(name) else { return .values(0) }
                let fields = index == 0 ? state.headers : state.responses[index - 1].headers
                let values = fields[values: field]
                L.newTable(arrayCapacity: Int32(clamping: values.count))
                for (i, v) in values.enumerated() {
                    L.push(v)
                    L.rawSet(-2, index: Int64(i + 1))
                }
                return .values(1)
            }),
            ("headers_set", { [unowned self] L in self.changeHeader(L, function: "set", append: false) }),
            ("headers_add", { [unowned self] L in self.changeHeader(L, function: "add", append: true) }),
            ("headers_remove", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("headers used after their request ended") }
                guard let name = L.toString(at: 3), let field = HTTPField.Name(name) else {
                    return .badArgument(1, "remove", expected: "header name", state: L, slot: 3)
                }
                if index == 0 { state.headers[field] = nil } else { state.responses[index - 1].headers[field] = nil }
                return .values(0)
            }),
            ("headers_all", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("headers used after their request ended") }
                let fields = index == 0 ? state.headers : state.responses[index - 1].headers
                L.newTable(recordCapacity: Int32(clamping: fields.count))
                var seen: Set<HTTPField.Name> = []
                for field in fields where seen.insert(field.name).inserted {
                    L.push(fields[field.name] ?? field.value)
                    L.rawSet(-2, field: field.name.canonicalName)
                }
                return .values(1)
            }),
        ]
    }

    private func changeHeader(_ L: LuaState, function: String, append: Bool) -> HostResult {
        guard let (state, index) = message(L) else { return .error("headers used after their request ended") }
        guard let name = L.toString(at: 3), let field = HTTPField.Name(name) else {
            return .error("bad argument #1 to '\(function)' (a valid header name expected, got \(L.type(at: 3) == .string ? "'\(L.toString(at: 3)!)'" : L.typeName(at: 3)))")
        }
        let value: String?
        switch L.type(at: 4) {
        case .nil, .none: value = nil
        case .string: value = L.toString(at: 4)
        case .number: value = L.plainText(at: 4)
        case .boolean: value = L.toBool(at: 4) ? "true" : "false"
        default: return .badArgument(2, function, expected: "string", state: L, slot: 4)
        }
        if let value, !HTTPField.isValidValue(value) {
            return .error("bad argument #2 to '\(function)' (header values cannot contain CR, LF or NUL)")
        }
        func apply(_ fields: inout HTTPFields) {
            if let value {
                if append { fields.append(HTTPField(name: field, value: value)) } else { fields[field] = value }
            } else if !append {
                fields[field] = nil
            }
        }
        if index == 0 { apply(&state.headers) } else { apply(&state.responses[index - 1].headers) }
        return .values(0)
    }
}
