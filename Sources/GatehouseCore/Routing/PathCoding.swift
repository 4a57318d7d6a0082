/// Percent-decoding of request paths and percent-encoding of values placed in URLs.
public enum PathCoding {
    /// Why a request path was refused before routing.
    public enum Rejection: Error, Sendable, Equatable {
        case invalidPercentEncoding
        case controlCharacter
        case dotSegment
        case notAbsolute
        case encodedSeparator

        public var detail: String {
            switch self {
            case .invalidPercentEncoding: "The request path contains an invalid percent-encoding."
            case .controlCharacter: "The request path contains a control character."
            case .dotSegment: "The request path contains a '.' or '..' segment."
            case .notAbsolute: "The request path must start with '/'."
            case .encodedSeparator: "The request path contains an encoded '/' (%2F) or a backslash, which upstreams may read as a separator."
            }
        }
    }

    /// Splits an origin-form path into decoded segments: the one normaliser behind both
    /// routing and forwarding (see ``canonicalPath(_:trailingSlash:)``), so the route chosen
    /// and the path an upstream receives always agree. Empty segments (`//`) are dropped so
    /// `/a//b` routes (and is forwarded) like `/a/b`; dot segments (also when encoded, `%2e%2e`)
    /// and control characters are refused, so no policy can be bypassed by spelling a path
    /// differently. An encoded `/` (`%2F`) or a `\` (raw or `%5C`) is refused too, unless
    /// `allowEncodedSlashes`: then it stays inside its segment, and is forwarded encoded.
    public static func segments(of path: Substring, allowEncodedSlashes: Bool = false) throws(Rejection) -> [String] {
        guard path.utf8.first == UInt8(ascii: "/") else { throw .notAbsolute }
        var result: [String] = []
        for raw in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let decoded = try decode(raw)
            if decoded == "." || decoded == ".." { throw .dotSegment }
            if !allowEncodedSlashes, decoded.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") }) {
                throw .encodedSeparator
            }
            result.append(decoded)
        }
        return result
    }

    /// The normalised form of a path: its decoded segments, each encoded again, one `/` between
    /// them, and a trailing `/` kept when the original had one. What routing saw is what the
    /// upstream gets: `//a/./b` never reaches here (refused), `/a//b` becomes `/a/b`, and a
    /// `%2F` that was allowed stays `%2F`.
    public static func canonicalPath(_ segments: [String], trailingSlash: Bool) -> String {
        guard !segments.isEmpty else { return "/" }
        var out = ""
        for segment in segments {
            out += "/"
            out += encodePathSegment(segment)
        }
        if trailingSlash { out += "/" }
        return out
    }

    /// The normalised form of `raw`, whose decoded segments are `segments`: `raw` itself when it
    /// is canonical already (the common case: nothing is rebuilt per request), else rebuilt.
    public static func canonicalPath(of raw: Substring, segments: [String]) -> String {
        if isCanonical(raw) { return String(raw) }
        return canonicalPath(segments, trailingSlash: raw.utf8.count > 1 && raw.utf8.last == UInt8(ascii: "/"))
    }

    /// No empty segment and only bytes that encoding keeps (so no percent-encoding either).
    static func isCanonical(_ raw: Substring) -> Bool {
        var afterSlash = false
        for c in raw.utf8 {
            if c == UInt8(ascii: "/") {
                if afterSlash { return false }
                afterSlash = true
            } else {
                afterSlash = false
                guard isUnreserved(c) || isSubDelim(c) || c == UInt8(ascii: ":") || c == UInt8(ascii: "@") else { return false }
            }
        }
        return raw.utf8.first == UInt8(ascii: "/")
    }

    /// Whether the path of an absolute URL (`scheme://authority/path?query`) has a segment that
    /// is, or decodes to, `.` or `..`: the last check before anything is sent upstream.
    public static func hasDotSegment(inURL url: String) -> Bool {
        let bytes = Substring(url).utf8
        var from = bytes.startIndex
        // Past "scheme://", if there is one (a byte scan: Foundation's range(of:) showed in the profile).
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            let after = bytes[bytes.index(after: colon)...]
            if after.starts(with: "//".utf8) { from = bytes.index(after.startIndex, offsetBy: 2) }
        }
        guard let slash = bytes[from...].firstIndex(of: UInt8(ascii: "/")) else { return false }
        let path = bytes[slash...]
        // Segment by segment, up to the query or fragment, without building any array.
        var start = path.index(after: path.startIndex)
        var i = start
        while true {
            let atEnd = i == path.endIndex || path[i] == UInt8(ascii: "?") || path[i] == UInt8(ascii: "#")
            if atEnd || path[i] == UInt8(ascii: "/") {
                if isDotSegment(path[start..<i]) { return true }
                if atEnd { return false }
                start = path.index(after: i)
            }
            i = path.index(after: i)
        }
    }

    /// `.` or `..`, also percent-encoded (`%2e`, `%2E.`): decoded on the fly, no allocation
    /// (this runs for every forwarded request).
    static func isDotSegment(_ raw: Substring.UTF8View.SubSequence) -> Bool {
        guard raw.count <= 6 else { return false } // "%2e%2e" is the longest spelling
        var dots = 0
        var i = raw.startIndex
        while i < raw.endIndex {
            if raw[i] == UInt8(ascii: ".") {
                i = raw.index(after: i)
            } else if raw[i] == UInt8(ascii: "%"), raw.distance(from: i, to: raw.endIndex) >= 3,
                      raw[raw.index(i, offsetBy: 1)] == UInt8(ascii: "2"),
                      raw[raw.index(i, offsetBy: 2)] | 0x20 == UInt8(ascii: "e") {
                i = raw.index(i, offsetBy: 3)
            } else {
                return false
            }
            dots += 1
        }
        return dots == 1 || dots == 2
    }

    static func decode(_ raw: Substring.UTF8View.SubSequence) throws(Rejection) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var i = raw.startIndex
        while i < raw.endIndex {
            let c = raw[i]
            if c == UInt8(ascii: "%") {
                let h = raw.index(after: i)
                guard h < raw.endIndex, raw.index(after: h) < raw.endIndex,
                      let hi = hexValue(raw[h]), let lo = hexValue(raw[raw.index(after: h)])
                else { throw .invalidPercentEncoding }
                let byte = hi << 4 | lo
                if byte < 0x20 || byte == 0x7F { throw .controlCharacter }
                bytes.append(byte)
                i = raw.index(h, offsetBy: 2)
            } else {
                if c < 0x20 || c == 0x7F { throw .controlCharacter }
                bytes.append(c)
                i = raw.index(after: i)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidPercentEncoding }
        return text
    }

    /// The value of one hex digit.
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Encodes `value` so it stays one path segment (`/`, `?`, `#` and `%` are encoded).
    public static func encodePathSegment(_ value: String) -> String {
        encode(value) { c in isUnreserved(c) || isSubDelim(c) || c == UInt8(ascii: ":") || c == UInt8(ascii: "@") }
    }

    /// Encodes a query name or value (only unreserved characters stay as they are).
    public static func encodeQueryComponent(_ value: String) -> String {
        encode(value, keep: isUnreserved)
    }

    private static func encode(_ value: String, keep: (UInt8) -> Bool) -> String {
        if value.utf8.allSatisfy(keep) { return value }
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count + 8)
        for c in value.utf8 {
            if keep(c) {
                out.append(c)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isUnreserved(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "~")
    }

    private static func isSubDelim(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
             UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        default: false
        }
    }

    /// Decodes a query string into ordered name/value pairs (`+` means space).
    public static func queryItems(_ query: Substring) -> [(name: String, value: String)] {
        guard !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decodeQuery(parts[0])
            let value = parts.count > 1 ? decodeQuery(parts[1]) : ""
            return (name, value)
        }
    }

    private static func decodeQuery(_ s: Substring) -> String {
        let plusFixed = s.utf8.contains(UInt8(ascii: "+")) ? Substring(s.replacingOccurrences(of: "+", with: " ")) : s
        return (try? decode(plusFixed.utf8[...])) ?? String(s)
    }
}

extension Substring {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
