import Glibc

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `::1/128`, or a bare address), for trusted proxies.
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`, what a dual-stack listener reports for an
/// IPv4 peer) are the IPv4 address.
struct CIDR: Sendable {
    private let network: [UInt8]
    private let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let address = Self.bytes(String(first)) else { return nil }
        let bits = address.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0 else { return nil }
            // A mapped network's prefix counts the 96 mapping bits.
            prefix = first.hasPrefix("::ffff:") && first.contains(".") ? p - 96 : p
            guard prefix >= 0, prefix <= bits else { return nil }
        }
        self.network = address
        self.prefix = prefix
    }

    func contains(_ text: String) -> Bool {
        guard let address = Self.bytes(text), address.count == network.count else { return false }
        var remaining = prefix
        for i in 0..<network.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if address[i] & mask != network[i] & mask { return false }
            remaining -= take
        }
        return true
    }

    /// 4 or 16 bytes, or nil for anything that is not an address.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    /// The canonical text of an address (`1.2.3.4` for `::ffff:1.2.3.4`; IPv6 compressed), or
    /// nil. Also accepts the forms proxies write into `X-Forwarded-For`: `1.2.3.4:5678`,
    /// `[2001:db8::1]` and `[2001:db8::1]:443`.
    static func canonical(_ raw: String) -> String? {
        var text = Substring(raw)
        if text.first == "[", let close = text.firstIndex(of: "]") {
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = text[..<colon]
        }
        guard let bytes = bytes(String(text)) else { return nil }
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
