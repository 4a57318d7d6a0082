/// Where one upstream request goes: the origin its connection pool is keyed by, and the
/// request target written on the request line.
///
/// Parsed from the URL a handler built (`baseUrl` + path, a rewrite pattern, `http.fetch`).
/// Only `http` and `https` with a host are accepted; user info is refused, since a gateway
/// never sends credentials it found in a URL.
struct UpstreamAddress: Sendable {
    let origin: UpstreamOrigin
    /// Path and query as they go on the request line ("/" when the URL had no path).
    let target: String

    init?(_ url: String) {
        let utf8 = url.utf8
        var rest: Substring.UTF8View
        let tls: Bool
        if let r = Self.dropPrefix("http://", of: utf8) {
            (rest, tls) = (r, false)
        } else if let r = Self.dropPrefix("https://", of: utf8) {
            (rest, tls) = (r, true)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        guard !authority.isEmpty, !authority.contains(UInt8(ascii: "@")) else { return nil }
        var host: Substring
        var portText: Substring?
        let text = Substring(authority)
        if text.first == "[" {
            // An IPv6 literal: [::1] or [::1]:8080.
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        // Only what a host name or IP literal can hold: the host goes into the `Host` header
        // and the TLS name unchecked by the codec.
        guard !host.isEmpty, host.utf8.allSatisfy(Self.isHostByte) else { return nil }
        var port = tls ? 443 : 80
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { return nil }
            port = p
        }
        // A fragment is never sent (RFC 9110 §4.2.4).
        var target = Substring(rest)
        if let hash = target.firstIndex(of: "#") { target = target[..<hash] }
        if target.isEmpty || target.first == "?" { target = "/" + target }
        // The target goes onto the request line as it is: nothing that could end it (space,
        // CR, LF), no other control byte and nothing outside ASCII (it must be %-encoded).
        guard target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        origin = UpstreamOrigin(tls: tls, host: host.lowercased(), port: port)
        self.target = String(target)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"):
            return true
        default:
            return false
        }
    }

    private static func dropPrefix(_ prefix: String, of utf8: String.UTF8View) -> Substring.UTF8View? {
        var index = utf8.startIndex
        for expected in prefix.utf8 {
            guard index != utf8.endIndex else { return nil }
            var byte = utf8[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
            guard byte == expected else { return nil }
            index = utf8.index(after: index)
        }
        return Substring(utf8[index...]).utf8
    }
}

/// Scheme, host and port: what a pooled connection can serve.
struct UpstreamOrigin: Hashable, Sendable, CustomStringConvertible {
    let tls: Bool
    let host: String
    let port: Int

    /// The `Host` header for this origin (the port only when it is not the scheme's default).
    let hostHeader: String

    init(tls: Bool, host: String, port: Int) {
        self.tls = tls
        self.host = host
        self.port = port
        let name = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        hostHeader = port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }

    static func == (a: UpstreamOrigin, b: UpstreamOrigin) -> Bool {
        a.tls == b.tls && a.port == b.port && a.host == b.host
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(tls)
        hasher.combine(host)
        hasher.combine(port)
    }

    var isIPv6: Bool { host.utf8.contains(UInt8(ascii: ":")) }

    /// True for an IP literal: such a host is connected to without a lookup, and never sent as
    /// TLS SNI (RFC 6066 §3 allows only DNS names there).
    var isIPLiteral: Bool {
        isIPv6 || host.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
    }

    var description: String { (tls ? "https://" : "http://") + hostHeader }
}
