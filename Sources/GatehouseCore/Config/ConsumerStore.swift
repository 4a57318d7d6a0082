import Crypto
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Edits `consumers.json` for `gatehouse keys`: keys are generated here, printed once by the
/// caller, and stored only as SHA-256 digests. Writes are atomic (temporary file + rename), so a
/// running gateway's watcher reloads a complete file.
public struct ConsumerStore {
    public let path: String

    public init(configDirectory: String) {
        path = configDirectory + "/" + GatewayConfig.consumersFile
    }

    /// A key's public description (no secret, no digest).
    public struct KeyInfo: Sendable {
        public let consumer: String
        public let id: String
        public let createdAt: String?
        public let expiresAt: Date?
        public var expired: Bool { expiresAt.map { $0 < Date() } ?? false }
    }

    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates a key for `consumer` (created if missing, with `metadata`; an existing consumer's
    /// metadata is replaced only when `metadata` is given). Returns the key, to show once.
    public func createKey(consumer: String, metadata: JSONValue?, prefix: String, expiresAt: Date?) throws(StoreError) -> (key: String, id: String) {
        if let metadata {
            guard case .object = metadata else { throw StoreError(description: "--metadata must be a JSON object") }
            guard metadata.serialized().count <= ConsumerConfig.maxMetadataBytes else {
                throw StoreError(description: "--metadata is larger than \(ConsumerConfig.maxMetadataBytes) bytes")
            }
        }
        var consumers = try read()
        let key = prefix + Self.randomToken(length: 32)
        let digest = SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
        let id = "key_" + digest.prefix(12)
        var entry: [String: JSONValue] = ["id": .string(id), "sha256": .string(digest), "createdAt": .string(ISO8601DateFormatter().string(from: Date()))]
        if let expiresAt { entry["expiresAt"] = .string(ISO8601DateFormatter().string(from: expiresAt)) }
        if let index = consumers.firstIndex(where: { $0["sub"]?.stringValue == consumer }), case .object(var existing) = consumers[index] {
            existing["keys"] = .array((existing["keys"]?.arrayValue ?? []) + [.object(entry)])
            if let metadata { existing["metadata"] = metadata }
            consumers[index] = .object(existing)
        } else {
            consumers.append(.object(["sub": .string(consumer), "keys": .array([.object(entry)]), "metadata": metadata ?? .object([:])]))
        }
        try write(consumers)
        return (key, id)
    }

    public func list() throws(StoreError) -> [KeyInfo] {
        try read().flatMap { consumer -> [KeyInfo] in
            let sub = consumer["sub"]?.stringValue ?? "?"
            return (consumer["keys"]?.arrayValue ?? []).map { key in
                KeyInfo(
                    consumer: sub, id: key["id"]?.stringValue ?? "(no id: " + (key["sha256"]?.stringValue?.prefix(12) ?? "") + "…)",
                    createdAt: key["createdAt"]?.stringValue,
                    expiresAt: key["expiresAt"]?.stringValue.flatMap { ISO8601DateFormatter().date(from: $0) })
            }
        }
    }

    /// Removes the key with `id`; returns its consumer.
    @discardableResult
    public func revoke(id: String) throws(StoreError) -> String {
        var consumers = try read()
        for (i, consumer) in consumers.enumerated() {
            guard case .object(var object) = consumer, let keys = object["keys"]?.arrayValue else { continue }
            let remaining = keys.filter { $0["id"]?.stringValue != id }
            if remaining.count != keys.count {
                object["keys"] = .array(remaining)
                consumers[i] = .object(object)
                try write(consumers)
                return object["sub"]?.stringValue ?? "?"
            }
        }
        throw StoreError(description: "no key with id \(id) in \(path)")
    }

    private func read() throws(StoreError) -> [JSONValue] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path), let json = try? JSONValue.parse(Array(data)) else {
            throw StoreError(description: "\(path) is not valid JSON")
        }
        return json["consumers"]?.arrayValue ?? []
    }

    private func write(_ consumers: [JSONValue]) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(JSONValue.object(["consumers": .array(consumers)]))
            data.append(0x0A)
            let temporary = path + ".tmp-\(getpid())"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw StoreError(description: "cannot replace \(path) (errno \(errno))") }
        } catch {
            throw StoreError(description: "cannot write \(path): \(error)")
        }
    }

    /// Random characters from [A-Za-z0-9] (rejection sampling, no modulo bias).
    static func randomToken(length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        var out = ""
        while out.count < length {
            let byte = UInt8.random(in: 0...255, using: &generator)
            if byte < 248 { out.append(alphabet[Int(byte) % 62]) }
        }
        return out
    }
}
