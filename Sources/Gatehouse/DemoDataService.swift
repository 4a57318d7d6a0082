import Foundation
import GatehouseCore
import HTTPTypes
public import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// The examples' "config service": serves routing records from JSON files, the way a real
/// customer-configuration service would, and counts its calls.
///
/// - `GET /records/<file>/<key>`: member `key` of `<directory>/<file>.json` (an object), with
///   `$env(NAME)` in strings replaced from `environment`; 404 when absent.
public final class DemoDataService: Sendable {
    private let files: [String: [String: JSONValue]]
    private let environment: [String: String]
    private let calls = NIOLockedValueBox(0)

    public init(directory: String, environment: [String: String]) {
        var files: [String: [String: JSONValue]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
            if let data = FileManager.default.contents(atPath: directory + "/" + name),
               case .object(let object)? = try? JSONValue.parse(Array(data)) {
                files[String(name.dropLast(5))] = object
            }
        }
        self.files = files
        self.environment = environment
    }

    public var requestCount: Int { calls.withLockedValue { $0 } }

    public func application(host: String = "127.0.0.1", port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let responder = CallbackResponder<BasicRequestContext> { [self] request, _ in self.answer(request) }
        return Application(
            responder: responder, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
    }

    private func answer(_ request: Request) -> Response {
        calls.withLockedValue { $0 += 1 }
        let parts = request.uri.path.split(separator: "/").map(String.init)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        guard parts.count == 3, parts[0] == "records", let value = files[parts[1]]?[parts[2]] else {
            return Response(status: .notFound, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"not found"}"#)))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: substitute(value).serialized())))
    }

    private func substitute(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s):
            var out = s
            for (name, replacement) in environment where out.contains("$env(\(name))") {
                out = out.replacingOccurrences(of: "$env(\(name))", with: replacement)
            }
            return .string(out)
        case .array(let a): return .array(a.map(substitute))
        case .object(let o): return .object(o.mapValues(substitute))
        default: return value
        }
    }
}

/// `config/demo.json`: what `gatehouse serve --demo` starts next to the gateway.
public struct DemoSetup: Sendable {
    public struct Upstream: Sendable {
        public let name: String
        public let port: Int
    }

    public var upstreams: [Upstream]
    /// Port and directory (relative to the config directory) of the data service, if any.
    public var dataService: (port: Int, directory: String)?

    /// Reads `<configDirectory>/demo.json`; without it: sandbox on 9101, production on 9102.
    public static func load(configDirectory: String) -> DemoSetup {
        let fallback = DemoSetup(upstreams: [.init(name: "sandbox", port: 9101), .init(name: "production", port: 9102)], dataService: nil)
        guard let data = FileManager.default.contents(atPath: configDirectory + "/demo.json"),
              let json = try? JSONValue.parse(Array(data)) else { return fallback }
        let upstreams = (json["upstreams"]?.arrayValue ?? []).compactMap { item -> Upstream? in
            guard let name = item["name"]?.stringValue, let port = item["port"]?.intValue else { return nil }
            return Upstream(name: name, port: Int(port))
        }
        var service: (Int, String)?
        if let port = json["dataService"]?["port"]?.intValue {
            service = (Int(port), configDirectory + "/" + (json["dataService"]?["directory"]?.stringValue ?? "demo-data"))
        }
        return DemoSetup(upstreams: upstreams, dataService: service)
    }
}
