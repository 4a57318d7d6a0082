import ArgumentParser
import Foundation

@main
struct GatehouseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An API gateway whose request logic lives in Lua policies.",
        subcommands: [Serve.self, Check.self, Routes.self, Plugins.self, TestCommand.self, Keys.self],
        defaultSubcommand: Serve.self)
}

/// Options shared by every command that loads a configuration.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "The config directory (routes.oas.json, policies.json, consumers.json, .env).")
    var config: String = "config"

    @Option(name: .long, help: "The plugin directory.")
    var plugins: String = "plugins"

    @Option(name: .customLong("plugin-path"), help: "An extra plugin directory searched after --plugins (repeatable; also GATEHOUSE_PLUGIN_PATH, colon-separated).")
    var pluginPath: [String] = []

    /// `--plugins`, then each `--plugin-path`, then each entry of GATEHOUSE_PLUGIN_PATH.
    var pluginDirectories: [String] {
        let fromEnvironment = (ProcessInfo.processInfo.environment["GATEHOUSE_PLUGIN_PATH"] ?? "")
            .split(separator: ":").map(String.init).filter { !$0.isEmpty }
        return [plugins] + pluginPath + fromEnvironment
    }
}
