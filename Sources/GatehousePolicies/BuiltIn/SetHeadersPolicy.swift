public import GatehouseCore
public import HTTPTypes

/// `set-headers-inbound` (on the request, before the upstream) and `set-headers-outbound` (on
/// the response): remove, then set, then append headers, with `${…}` references in values
/// (``HeaderTemplate``) and `$env(…)` resolved at load like everywhere in the config.
///
/// Options: `set` and `append` (objects: header name → value template), `remove` (a list of
/// header names). A value whose references all came out empty (a header the request did not
/// have, a `context.custom` value no policy set) is not appended, and for `set` the header is
/// removed, so a client can never supply a value the gateway meant to set.
public struct SetHeadersPolicy: Sendable {
    public let name: String
    let remove: [HTTPField.Name]
    let set: [(HTTPField.Name, HeaderTemplate)]
    let append: [(HTTPField.Name, HeaderTemplate)]
    let customNames: [String]

    public init(name: String, options: JSONValue, location: ConfigError? = nil) throws(ConfigError) {
        self.name = name
        func fail(_ message: String) -> ConfigError { optionError(location, policy: name, message) }
        for key in options.objectValue?.keys.sorted() ?? [] where !["set", "append", "remove"].contains(key) {
            throw fail("unknown option '\(key)' (set, append, remove)")
        }
        func templates(_ key: String) throws(ConfigError) -> [(HTTPField.Name, HeaderTemplate)] {
            guard let value = options[key] else { return [] }
            guard case .object(let members) = value else { throw fail("options.\(key) is an object: header name → value") }
            var out: [(HTTPField.Name, HeaderTemplate)] = []
            for (header, template) in members.sorted(by: { $0.key < $1.key }) {
                guard let fieldName = HTTPField.Name(header) else { throw fail("options.\(key): '\(header)' is not a valid header name") }
                guard let text = template.stringValue else { throw fail("options.\(key).\(header) must be a string") }
                do {
                    out.append((fieldName, try HeaderTemplate(text)))
                } catch {
                    throw fail("options.\(key).\(header): \(error.description)")
                }
            }
            return out
        }
        set = try templates("set")
        append = try templates("append")
        var remove: [HTTPField.Name] = []
        if let list = options["remove"] {
            guard case .array(let items) = list else { throw fail("options.remove is a list of header names") }
            for item in items {
                guard let text = item.stringValue, let fieldName = HTTPField.Name(text) else { throw fail("options.remove: \(item) is not a valid header name") }
                remove.append(fieldName)
            }
        }
        self.remove = remove
        guard !set.isEmpty || !append.isEmpty || !remove.isEmpty else { throw fail("options needs set, append or remove") }
        customNames = Array(Set((set + append).flatMap { $0.1.customNames })).sorted()
    }

    /// Applies the changes to `fields` (the request's or the response's headers).
    public func apply(to fields: inout HTTPFields, state: RequestState, runtime: PolicyRuntime) async {
        let custom = customNames.isEmpty ? [:] : await runtime.customValues(customNames, state: state)
        let environment = runtime.environment
        func value(_ part: HeaderTemplate.Part) -> String? {
            switch part {
            case .literal(let text): return text
            case .request(.literal(let text)): return text
            case .request(.contextCustom(let name)): return custom[name]
            case .request(.param(let name)): return state.params.first { $0.name == name }?.value
            case .request(.query(let name)): return PathCoding.queryItems((state.query ?? "")[...]).first { $0.name == name }?.value
            case .request(.header(let name)):
                guard let field = HTTPField.Name(name) else { return nil }
                let values = state.headers[values: field]
                return values.isEmpty ? nil : values.joined(separator: ", ")
            case .request(.env(let name)): return environment.values[name]
            case .request(.method): return state.method.rawValue
            case .request(.path): return state.path
            case .user(let path):
                guard var node = state.user else { return nil }
                for field in path {
                    guard let next = node[field] else { return nil }
                    node = next
                }
                switch node {
                case .string(let s): return s
                case .int(let i): return String(i)
                case .double(let d): return String(d)
                case .bool(let b): return String(b)
                default: return nil
                }
            }
        }
        func rendered(_ template: HeaderTemplate) -> String? {
            let references = template.parts.filter { if case .literal = $0 { false } else { true } }
            if !references.isEmpty && references.allSatisfy({ (value($0) ?? "").isEmpty }) { return nil }
            return template.render(value)
        }
        for name in remove { fields[name] = nil }
        for (name, template) in set {
            // Empty: removed, so a client cannot supply the value the gateway did not have
            // (an anonymous caller's own X-Consumer-Id).
            fields[name] = rendered(template)
        }
        for (name, template) in append {
            if let text = rendered(template) { fields.append(HTTPField(name: name, value: text)) }
        }
    }
}
