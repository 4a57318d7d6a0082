import Foundation

/// Values for `$env(NAME)` references: the process environment over `config/.env`.
///
/// Values are never logged or echoed in errors (they are often secrets): errors name the
/// variable only.
public struct ConfigEnvironment: Sendable {
    public let values: [String: String]

    public init(values: [String: String]) { self.values = values }

    /// The process environment over the `KEY=value` lines of `dotEnvFile`, if it exists.
    public static func load(dotEnvFile: String?, process: [String: String]? = nil) -> ConfigEnvironment {
        let process = process ?? ProcessInfo.processInfo.environment
        var values: [String: String] = [:]
        if let dotEnvFile, let text = try? String(contentsOfFile: dotEnvFile, encoding: .utf8) {
            values = parseDotEnv(text)
        }
        values.merge(process) { _, fromProcess in fromProcess }
        return ConfigEnvironment(values: values)
    }

    /// `KEY=value` lines; `#` comments; optional single or double quotes around the value.
    public static func parseDotEnv(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            out[key] = value
        }
        return out
    }

    /// Replaces every `$env(NAME)` in `text`.
    func substitute(_ text: String, at node: ConfigNode) throws(ConfigError) -> String {
        guard text.contains("$env(") else { return text }
        var out = ""
        var rest = text[...]
        while let start = rest.range(of: "$env(") {
            out += rest[..<start.lowerBound]
            guard let close = rest[start.upperBound...].firstIndex(of: ")") else {
                throw node.error("unterminated $env( reference")
            }
            let name = String(rest[start.upperBound..<close])
            guard let value = values[name] else {
                throw node.error("environment variable \(name) is not set (referenced as $env(\(name)))")
            }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
