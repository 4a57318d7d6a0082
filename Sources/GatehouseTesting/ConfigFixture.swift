import Foundation

/// A throwaway project directory (`config/` + `plugins/`) written by a test.
public struct ConfigFixture: Sendable {
    public let root: String
    public var configDirectory: String { root + "/config" }
    public var pluginDirectory: String { root + "/plugins" }

    /// Creates the directories and writes `files` (paths relative to the root, e.g.
    /// `config/routes.oas.json`, `plugins/x.lua`).
    public init(files: [String: String]) throws {
        root = NSTemporaryDirectory() + "gatehouse-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/config", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/plugins", withIntermediateDirectories: true)
        for (path, text) in files { try write(path, text) }
    }

    public func write(_ path: String, _ text: String) throws {
        let full = root + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The repository's own directory (for tests that serve the shipped `config/` + `plugins/`).
    public static func repositoryRoot(file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// A routes document with one operation per entry: (method, path, x-gatehouse-route JSON).
    public static func routes(_ operations: [(method: String, path: String, route: String)]) -> String {
        var byPath: [(String, [String])] = []
        for op in operations {
            let entry = "\"\(op.method.lowercased())\": { \"x-gatehouse-route\": \(op.route) }"
            if let i = byPath.firstIndex(where: { $0.0 == op.path }) { byPath[i].1.append(entry) } else { byPath.append((op.path, [entry])) }
        }
        let paths = byPath.map { "\"\($0.0)\": { \($0.1.joined(separator: ", ")) }" }.joined(separator: ",\n")
        return "{ \"openapi\": \"3.1.0\", \"info\": { \"title\": \"test\", \"version\": \"1\" }, \"paths\": {\n\(paths)\n} }"
    }
}
