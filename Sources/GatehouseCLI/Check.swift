import ArgumentParser
import Foundation
import Gatehouse
import GatehousePolicies
import Logging
import NIOPosix

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the config and compile every plugin, exactly as serving would; non-zero exit on any error.")

    @OptionGroup var source: SourceOptions

    func run() async throws {
        // One throwaway loop: the same loader as serving, but a single VM to compile on.
        let group = MultiThreadedEventLoopGroup.singleton
        let logger = Logger(label: "gatehouse.check")
        do {
            let snapshot = try await Snapshot.load(
                configDirectory: source.config, pluginDirectories: source.pluginDirectories,
                loops: [group.next()], generation: 1, logger: logger)
            for warning in snapshot.config.warnings { print("warning: \(warning)") }
            let lua = snapshot.config.policies.values.filter(\.isLua).count
            print("OK: \(snapshot.config.routes.count) routes, \(snapshot.config.policies.count) policies (\(lua) Lua), \(snapshot.config.consumers.count) consumers, \(snapshot.config.upstreams.groups.count) upstream groups, \(snapshot.sources.files.count) plugin files")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
