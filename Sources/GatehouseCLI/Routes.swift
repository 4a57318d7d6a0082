import ArgumentParser
import Foundation
import GatehouseCore
import HTTPTypes

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List routes in precedence order, or explain which route wins for a request.",
        discussion: "Example: gatehouse routes --explain 'GET /v1/customers/42'")

    @OptionGroup var source: SourceOptions

    @Option(help: "A request such as 'GET /v1/x': say which route wins and why.")
    var explain: String?

    func run() throws {
        let config: GatewayConfig
        do {
            config = try GatewayConfig.load(directory: source.config)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let table = RouteTable(config.routes)
        guard let explain else {
            for (index, route) in table.ordered {
                let policies = (route.inbound.map { "→\($0)" } + route.outbound.map { "←\($0)" }).joined(separator: " ")
                print("\(route.label)  (#\(index + 1), line \(route.location.line ?? 0))  \(policies)")
            }
            return
        }
        let parts = explain.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let method = HTTPRequest.Method(parts[0].uppercased()) else {
            throw ValidationError("--explain takes 'METHOD /path'")
        }
        let path = parts[1].split(separator: "?", maxSplits: 1).first ?? "/"
        do {
            let segments = try PathCoding.segments(of: path)
            for line in table.explain(method: method, segments: segments) { print(line) }
        } catch {
            print("rejected before routing: \(error.detail)")
        }
    }
}
