import Foundation
import GatehouseCore

/// Writes `files` into a fresh config directory, loads it, and removes it.
func loadConfigDirectory(_ files: [String: String], environment: [String: String] = [:]) throws(ConfigErrors) -> GatewayConfig {
    let dir = NSTemporaryDirectory() + "gatehouse-config-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (name, text) in files { try? text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
    return try GatewayConfig.load(directory: dir, processEnvironment: environment)
}
