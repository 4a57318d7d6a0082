import Crypto
import Foundation

/// The text of every Lua file under the plugin directories, read once per generation so that
/// `require` never touches the file system while requests are served.
public struct PluginSources: Sendable {
    public struct File: Sendable {
        /// How errors name the file: `plugins/auth.lua`.
        public let chunkName: String
        public let path: String
        public let directory: String
        public let source: String
        /// Hex SHA-256 of the file, to tell deployments' copies apart.
        public let sha256: String
    }

    /// Relative path without `.lua` (`auth`, `lib/util`, `routing/init`) → file.
    public private(set) var files: [String: File] = [:]
    public let directories: [String]

    /// Reads every `*.lua` below `directories` (earlier directories win on a name clash).
    public init(directories: [String]) throws(PluginSourceError) {
        self.directories = directories
        let fm = FileManager.default
        for directory in directories {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw PluginSourceError(path: directory, message: "plugin directory not found")
            }
            let base = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
            guard let walker = fm.enumerator(atPath: directory) else { continue }
            for case let relative as String in walker where relative.hasSuffix(".lua") {
                let name = String(relative.dropLast(4))
                if files[name] != nil { continue }
                let path = directory + "/" + relative
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw PluginSourceError(path: path, message: "cannot read the file as UTF-8 text")
                }
                let digest = SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
                files[name] = File(chunkName: base + "/" + relative, path: path, directory: directory, source: text, sha256: digest)
            }
        }
    }

    /// Resolves a module name as `require` and `$import` do: `a.b` means `a/b`; a name is looked
    /// up as `<name>.lua`, `<name>/init.lua`, then the same under `lib/`.
    public func resolve(_ name: String) -> File? {
        let path = name.contains("/") ? name : name.replacingOccurrences(of: ".", with: "/")
        guard !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), !path.hasPrefix("/") else { return nil }
        for candidate in [path, path + "/init", "lib/" + path, "lib/" + path + "/init"] {
            if let file = files[candidate] { return file }
        }
        return nil
    }
}

/// A plugin directory or file that cannot be read.
public struct PluginSourceError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}
