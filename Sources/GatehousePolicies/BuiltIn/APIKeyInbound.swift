import Crypto
import Foundation
public import GatehouseCore
import HTTPTypes

/// `api-key-inbound`: authenticates a request by API key against `consumers.json`.
///
/// Keys are stored only as SHA-256 digests. The presented key is hashed, its digest picks a
/// bucket by its first 8 bytes (what an attacker learns from that timing is about a digest of
/// their own input, not about any stored key), and the full digests are compared in constant
/// time. On success `request.user = {sub = consumer.sub, data = consumer.metadata}`.
public struct APIKeyInbound: Sendable {
    public let name: String
    /// The header carrying the key (default `authorization`).
    let header: HTTPField.Name
    /// The scheme before the key in that header (default `Bearer`); empty for a bare key.
    let scheme: String
    /// When true, requests without a key go on unauthenticated (`request.user` stays nil);
    /// a wrong key is still refused.
    let allowUnauthenticated: Bool
    /// Remove the key's header once the key is accepted, so the upstream never sees it.
    let hideCredentials: Bool
    private let buckets: [UInt64: [(digest: [UInt8], consumer: Int, expiresAt: Date?)]]
    private let users: [JSONValue]

    public init(name: String, options: JSONValue, consumers: [ConsumerConfig], location: ConfigError? = nil) throws(ConfigError) {
        self.name = name
        try checkOptions(options, known: ["headerName", "authScheme", "allowUnauthenticatedRequests", "hideCredentials"],
                         booleans: ["allowUnauthenticatedRequests", "hideCredentials"], location: location, policy: name)
        let headerName = options["headerName"]?.stringValue ?? "Authorization"
        guard let header = HTTPField.Name(headerName) else {
            throw optionError(location, policy: name, "options.headerName is not a valid header name")
        }
        self.header = header
        self.scheme = options["authScheme"]?.stringValue ?? (header == .authorization ? "Bearer" : "")
        self.allowUnauthenticated = options["allowUnauthenticatedRequests"]?.boolValue ?? false
        self.hideCredentials = options["hideCredentials"]?.boolValue ?? false
        var buckets: [UInt64: [(digest: [UInt8], consumer: Int, expiresAt: Date?)]] = [:]
        var users: [JSONValue] = []
        for (i, consumer) in consumers.enumerated() {
            users.append(.object(["sub": .string(consumer.sub), "data": consumer.metadata]))
            for key in consumer.keys {
                buckets[Self.prefix(key.sha256), default: []].append((key.sha256, i, key.expiresAt))
            }
        }
        self.buckets = buckets
        self.users = users
    }

    /// The outcome for one request: nil to go on, or the problem to answer with.
    public func authenticate(_ state: RequestState) -> Problem? {
        guard let raw = state.headers[header], let key = extractKey(raw) else {
            if allowUnauthenticated { return nil }
            return unauthorized("No API key was provided. Send it as '\(header.rawName): \(scheme.isEmpty ? "" : scheme + " ")<key>'.")
        }
        let digest = Array(SHA256.hash(data: Array(key.utf8)))
        var match = -1
        var expiresAt: Date?
        for candidate in buckets[Self.prefix(digest)] ?? [] where Self.constantTimeEqual(candidate.digest, digest) {
            match = candidate.consumer
            expiresAt = candidate.expiresAt
        }
        guard match >= 0 else { return unauthorized("The API key is not valid.") }
        if let expiresAt, expiresAt < Date() { return unauthorized("The API key has expired.") }
        state.setUser(users[match])
        if hideCredentials { state.headers[header] = nil }
        return nil
    }

    private func extractKey(_ value: String) -> Substring? {
        var rest = value[...]
        if !scheme.isEmpty {
            // "<scheme> <key>", the scheme matched without regard to ASCII case, compared byte
            // by byte so no lowercased copies are made per request.
            let bytes = rest.utf8
            let n = scheme.utf8.count
            guard bytes.count > n,
                  bytes.prefix(n).elementsEqual(scheme.utf8, by: { Self.asciiLower($0) == Self.asciiLower($1) }),
                  bytes[bytes.index(bytes.startIndex, offsetBy: n)] == UInt8(ascii: " ") else { return nil }
            rest = rest[bytes.index(bytes.startIndex, offsetBy: n + 1)...]
        }
        let key = rest.drop(while: { $0 == " " })
        return key.isEmpty ? nil : key
    }

    private func unauthorized(_ detail: String) -> Problem {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = scheme.isEmpty ? "ApiKey" : "\(scheme) realm=\"gatehouse\""
        return Problem(status: .unauthorized, type: Problem.Kind.unauthorized, detail: detail, headers: headers)
    }

    private static func asciiLower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    private static func prefix(_ digest: [UInt8]) -> UInt64 {
        digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
