import Yams

/// A node of a JSON (or YAML) config file that knows where it is, so every error can say file,
/// line and JSON pointer.
struct ConfigNode {
    let node: Node
    let file: String
    let pointer: String
    let environment: ConfigEnvironment

    var line: Int? { node.mark.map { $0.line } }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, pointer: pointer, line: line, message: message)
    }

    func child(_ key: String, _ value: Node) -> ConfigNode {
        let escaped = key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        return ConfigNode(node: value, file: file, pointer: pointer + "/" + escaped, environment: environment)
    }

    /// Members in document order.
    func members() throws(ConfigError) -> [(key: String, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw error("expected an object, found \(kind)") }
        var out: [(key: String, value: ConfigNode)] = []
        var seen: Set<String> = []
        for (k, v) in mapping {
            guard let key = k.scalar?.string else { throw error("object keys must be strings") }
            guard seen.insert(key).inserted else { throw child(key, v).error("duplicate key '\(key)'") }
            out.append((key, child(key, v)))
        }
        return out
    }

    func member(_ key: String) throws(ConfigError) -> ConfigNode? {
        try members().first(where: { $0.key == key })?.value
    }

    func requiredMember(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let m = try member(key) else { throw error("missing required member '\(key)'") }
        return m
    }

    func elements() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let seq) = node else { throw error("expected an array, found \(kind)") }
        return seq.enumerated().map { ConfigNode(node: $1, file: file, pointer: pointer + "/\($0)", environment: environment) }
    }

    /// A string with `$env(NAME)` references substituted.
    func string() throws(ConfigError) -> String {
        guard case .scalar(let s) = node, s.style != .plain || !isNonStringPlain(s.string) else {
            throw error("expected a string, found \(kind)")
        }
        return try environment.substitute(s.string, at: self)
    }

    func bool() throws(ConfigError) -> Bool {
        if case .scalar(let s) = node, s.style == .plain {
            if s.string == "true" { return true }
            if s.string == "false" { return false }
        }
        throw error("expected true or false, found \(kind)")
    }

    func int() throws(ConfigError) -> Int {
        if case .scalar(let s) = node, s.style == .plain, let i = Int(s.string) { return i }
        throw error("expected an integer, found \(kind)")
    }

    func stringArray() throws(ConfigError) -> [String] {
        var out: [String] = []
        for element in try elements() { out.append(try element.string()) }
        return out
    }

    /// Any value as JSON, with `$env(NAME)` substituted in strings.
    func json() throws(ConfigError) -> JSONValue {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                switch s.string {
                case "null", "~", "": return .null
                case "true": return .bool(true)
                case "false": return .bool(false)
                default:
                    if let i = Int64(s.string) { return .int(i) }
                    if let d = Double(s.string) { return .double(d) }
                }
            }
            return .string(try environment.substitute(s.string, at: self))
        case .sequence:
            var out: [JSONValue] = []
            for e in try elements() { out.append(try e.json()) }
            return .array(out)
        case .mapping:
            var out: [String: JSONValue] = [:]
            for (k, v) in try members() { out[k] = try v.json() }
            return .object(out)
        case .alias:
            throw error("YAML aliases are not supported")
        }
    }

    var kind: String {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if s.string == "null" { return "null" }
                if s.string == "true" || s.string == "false" { return "a boolean" }
                if Double(s.string) != nil { return "a number" }
            }
            return "a string"
        case .mapping: return "an object"
        case .sequence: return "an array"
        case .alias: return "an alias"
        }
    }

    private func isNonStringPlain(_ s: String) -> Bool {
        s == "null" || s == "true" || s == "false" || Double(s) != nil
    }

    /// Parses a JSON or YAML document.
    static func parse(text: String, file: String, environment: ConfigEnvironment) throws(ConfigError) -> ConfigNode {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, message: "the file is empty")
            }
            return ConfigNode(node: node, file: file, pointer: "", environment: environment)
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), message: "not valid JSON: \(Self.summary(of: error))")
        } catch {
            throw ConfigError(file: file, message: "cannot parse: \(error)")
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default:
            return "\(error)"
        }
    }
}
