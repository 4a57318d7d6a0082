import ArgumentParser

@main
struct GatehouseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An API gateway whose request logic lives in Lua policies.",
        subcommands: [Serve.self, Check.self, Routes.self],
        defaultSubcommand: Serve.self)
}

/// Options shared by every command that loads a configuration.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "The config directory (routes.oas.json, policies.json, consumers.json, .env).")
    var config: String = "config"

    @Option(name: .long, help: "The plugin directory.")
    var plugins: String = "plugins"

    @Option(name: .customLong("plugin-path"), help: "An extra plugin directory searched after --plugins (repeatable).")
    var pluginPath: [String] = []

    var pluginDirectories: [String] { [plugins] + pluginPath }
}
