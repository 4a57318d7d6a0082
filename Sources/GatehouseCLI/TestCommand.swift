import ArgumentParser
import Foundation
import Gatehouse
import Logging

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the policy tests (*_test.lua in the plugin directories) in-process; exit 1 if any fails.")

    @OptionGroup var source: SourceOptions

    @Flag(name: .customLong("include-shared"), help: "Also run the tests of the --plugin-path directories.")
    var includeShared = false

    func run() async throws {
        var logger = Logger(label: "gatehouse.test")
        logger.logLevel = .error
        let results: [PolicyTestRunner.CaseResult]
        do {
            results = try await PolicyTestRunner.run(
                configDirectory: source.config, pluginDirectories: source.pluginDirectories,
                testDirectories: includeShared ? source.pluginDirectories : [source.plugins], logger: logger)
        } catch {
            FileHandle.standardError.write(Data("gatehouse: the configuration is not valid:\n\(error)\n".utf8))
            throw ExitCode(2)
        }
        if results.isEmpty {
            print("no *_test.lua files in \(source.pluginDirectories.joined(separator: ", "))")
            return
        }
        for result in results {
            if let failure = result.failure {
                print("✘ \(result.file): \(result.name)\n    \(failure)")
            } else {
                print("✔ \(result.file): \(result.name)")
            }
        }
        let failed = results.filter { !$0.passed }.count
        print("\(results.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
