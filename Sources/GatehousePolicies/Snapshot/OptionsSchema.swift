import GatehouseCore

/// Validates a policy instance's `options` against the schema its module declares:
///
/// ```lua
/// return {
///   options = {
///     backends = { type = "object", required = true, description = "environment -> base URL" },
///     mode     = { type = "string", enum = { "strict", "lenient" }, default = "strict" },
///   },
///   inbound = function(request, context, options) ... end,
/// }
/// ```
///
/// Types: `string`, `number`, `integer`, `boolean`, `object` (or `table`), `array`, `any`.
/// Unknown option names are errors, so a typo never silently falls back to a default.
enum OptionsSchema {
    struct Problems: Error {
        let lines: [String]
    }

    /// The options with defaults applied, or every problem found.
    static func apply(_ schema: JSONValue, to options: JSONValue) -> Result<JSONValue, Problems> {
        guard case .object(let fields) = schema else { return .failure(Problems(lines: ["the module's 'options' schema must be a table of field specs"])) }
        guard case .object(var values) = options else { return .failure(Problems(lines: ["options must be an object"])) }
        var problems: [String] = []
        for name in values.keys.sorted() where fields[name] == nil {
            problems.append("options.\(name) is not an option of this policy (known: \(fields.keys.sorted().joined(separator: ", ")))")
        }
        for (name, spec) in fields.sorted(by: { $0.key < $1.key }) {
            guard case .object(let rule) = spec else {
                problems.append("schema of options.\(name) must be a table")
                continue
            }
            guard let value = values[name], value != .null else {
                if let fallback = rule["default"] {
                    values[name] = fallback
                } else if rule["required"]?.boolValue == true {
                    problems.append("options.\(name) is required" + (rule["description"]?.stringValue.map { " (\($0))" } ?? ""))
                }
                continue
            }
            if let type = rule["type"]?.stringValue, !matches(value, type) {
                problems.append("options.\(name) must be \(article(type)) \(type), found \(value.typeName)")
            }
            if case .array(let allowed) = rule["enum"] ?? .null, !allowed.contains(value) {
                let list = allowed.map { String(decoding: $0.serialized(), as: UTF8.self) }.joined(separator: ", ")
                problems.append("options.\(name) must be one of \(list)")
            }
        }
        return problems.isEmpty ? .success(JSONValue.object(values)) : .failure(Problems(lines: problems))
    }

    private static func matches(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("any", _): true
        case ("string", .string): true
        case ("number", .int), ("number", .double): true
        case ("integer", .int): true
        case ("integer", .double(let d)): d.rounded() == d
        case ("boolean", .bool): true
        case ("object", .object), ("table", .object), ("table", .array): true
        case ("array", .array): true
        default: false
        }
    }

    private static func article(_ type: String) -> String {
        ["a", "e", "i", "o", "u"].contains(type.prefix(1)) ? "an" : "a"
    }
}

/// One plugin file as the admin endpoint and `gatehouse plugins list` show it.
public struct PluginInfo: Sendable, Codable {
    public let file: String
    public let directory: String
    public let name: String?
    public let version: String?
    public let sha256: String
}
