import ArgumentParser
import Foundation
import GatehouseCore

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys in consumers.json (only SHA-256 digests are stored; a running gateway reloads the file).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it once.")

        @Option(help: "The consumer (request.user.sub); created if it does not exist.")
        var consumer: String

        @Option(help: "The consumer's metadata as a JSON object (request.user.data); replaces the existing metadata.")
        var metadata: String?

        @Option(help: "A prefix for the key, e.g. sk_test_ or sk_live_.")
        var prefix: String = "gh_"

        @Option(help: "Expiry: an ISO 8601 time (2027-01-31T00:00:00Z) or a duration such as 90d or 12h.")
        var expires: String?

        @Option(help: "The config directory.")
        var config: String = "config"

        func run() throws {
            var metadataValue: JSONValue?
            if let metadata {
                guard let parsed = try? JSONValue.parse(Array(metadata.utf8)) else { throw ValidationError("--metadata is not valid JSON") }
                metadataValue = parsed
            }
            var expiresAt: Date?
            if let expires {
                guard let date = Self.expiry(expires) else { throw ValidationError("--expires takes an ISO 8601 time or a duration like 90d, 12h") }
                expiresAt = date
            }
            do {
                let (key, id) = try ConsumerStore(configDirectory: config).createKey(consumer: consumer, metadata: metadataValue, prefix: prefix, expiresAt: expiresAt)
                print(key)
                FileHandle.standardError.write(Data("created \(id) for \(consumer)\(expiresAt.map { ", expires \(ISO8601DateFormatter().string(from: $0))" } ?? ""). Store the key now: only its SHA-256 is kept.\n".utf8))
            } catch {
                throw ValidationError(error.description)
            }
        }

        static func expiry(_ text: String) -> Date? {
            if let date = ISO8601DateFormatter().date(from: text) { return date }
            guard let unit = text.last, let amount = Double(text.dropLast()), amount > 0 else { return nil }
            switch unit {
            case "d": return Date().addingTimeInterval(amount * 86_400)
            case "h": return Date().addingTimeInterval(amount * 3_600)
            case "m": return Date().addingTimeInterval(amount * 60)
            default: return nil
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (ids, dates, status; never secrets).")

        @Option(help: "The config directory.")
        var config: String = "config"

        func run() throws {
            let keys: [ConsumerStore.KeyInfo]
            do { keys = try ConsumerStore(configDirectory: config).list() } catch { throw ValidationError(error.description) }
            print("CONSUMER\tKEY ID\tCREATED\tEXPIRES\tSTATUS")
            for key in keys {
                let expires = key.expiresAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                print("\(key.consumer)\t\(key.id)\t\(key.createdAt ?? "-")\t\(expires)\t\(key.expired ? "expired" : "active")")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by its id.")

        @Argument(help: "The key id (from keys list).")
        var id: String

        @Option(help: "The config directory.")
        var config: String = "config"

        func run() throws {
            do {
                let consumer = try ConsumerStore(configDirectory: config).revoke(id: id)
                print("revoked \(id) of \(consumer)")
            } catch {
                throw ValidationError(error.description)
            }
        }
    }
}
