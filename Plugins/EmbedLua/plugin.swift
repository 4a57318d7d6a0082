// Embeds the prelude's Lua (Sources/GatehousePolicies/Lua/prelude/*.lua) into GatehousePolicies
// at build time: one build command runs EmbedLuaTool, which writes PreludeSources.swift (the
// chunks as string literals, in the order of the directory's ORDER file) into the plugin's
// work directory. The .lua files and ORDER are the command's inputs, so editing one rebuilds.
//
// The directory is `exclude`d from the target in Package.swift (SwiftPM would otherwise warn
// about files it does not handle); the plugin reads it by path from the target's directory.
import Foundation
import PackagePlugin

@main
struct EmbedLua: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        // `Target.directoryURL` needs tools 6.1; the concrete Swift target has it in 6.0.
        guard let module = target as? SwiftSourceModuleTarget else {
            throw EmbedLuaError("EmbedLua applies to Swift targets only, not \(target.name)")
        }
        let prelude = module.directoryURL.appendingPathComponent("Lua").appendingPathComponent("prelude")
        let order = prelude.appendingPathComponent("ORDER")
        let names = try FileManager.default.contentsOfDirectory(atPath: prelude.path)
        let chunks = names.filter { $0.hasSuffix(".lua") }.sorted().map { prelude.appendingPathComponent($0) }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("PreludeSources.swift")
        return [
            .buildCommand(
                displayName: "Embedding the Lua prelude of \(target.name) (\(chunks.count) chunks)",
                executable: try context.tool(named: "EmbedLuaTool").url,
                arguments: [output.path, order.path] + chunks.map(\.path),
                inputFiles: [order] + chunks,
                outputFiles: [output])
        ]
    }
}

struct EmbedLuaError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
