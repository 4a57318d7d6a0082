import ArgumentParser
import Foundation
import GatehousePolicies
import Logging
import NIOPosix

struct Plugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plugin files: name, version, source directory and content hash.",
        subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every plugin file the configuration would load.")

        @OptionGroup var source: SourceOptions

        func run() async throws {
            let snapshot: Snapshot
            do {
                snapshot = try await Snapshot.load(
                    configDirectory: source.config, pluginDirectories: source.pluginDirectories,
                    loops: [MultiThreadedEventLoopGroup.singleton.next()], generation: 1, logger: Logger(label: "gatehouse.plugins"))
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
            print("FILE\tNAME\tVERSION\tDIRECTORY\tSHA-256")
            for p in snapshot.plugins {
                print("\(p.file)\t\(p.name ?? "-")\t\(p.version ?? "-")\t\(p.directory)\t\(p.sha256.prefix(16))…")
            }
        }
    }
}
