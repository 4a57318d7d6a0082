public import HTTPTypes

/// Hop-by-hop header handling (RFC 9110 §7.6.1): these describe one connection and are never
/// forwarded, nor is any header the `Connection` header names.
public enum HopByHop {
    static let standard: [HTTPField.Name] = [
        .connection, .init("Keep-Alive")!, .init("Proxy-Connection")!, .te, .transferEncoding, .upgrade,
        .init("Trailer")!, .proxyAuthorization, .proxyAuthenticate,
    ]

    /// Removes hop-by-hop fields, including those listed in `Connection`.
    public static func strip(_ fields: inout HTTPFields) {
        // One pass to see whether there is anything to remove: most messages have none, and
        // each lookup below is a scan of all fields.
        guard fields.contains(where: { field in standard.contains(field.name) }) else { return }
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                let name = token.trimmingCharacters(in: " \t")
                if let field = HTTPField.Name(String(name)) { fields[field] = nil }
            }
        }
        for name in standard where fields[name] != nil {
            fields[name] = nil
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
