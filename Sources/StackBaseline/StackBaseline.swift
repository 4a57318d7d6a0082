import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// The floor of the stack Gatehouse is built on, written the way the two libraries' documents
/// suggest: Hummingbird answers every request by forwarding it with AsyncHTTPClient's `async`
/// API to one upstream and streaming the answer back. No routing, policies, header hygiene,
/// request ids or limits. `bench/run.sh` times it beside Gatehouse W0 so that the README can
/// say how much of the distance to nginx belongs to the stack rather than to the gateway.
///
///     gatehouse-stack-baseline PORT UPSTREAM_BASE_URL
@main
struct StackBaseline {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let port = Int(arguments[1]) else {
            print("usage: gatehouse-stack-baseline PORT UPSTREAM_BASE_URL")
            return
        }
        let upstream = arguments[2]
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            var outgoing = HTTPClientRequest(url: upstream + (request.head.path ?? "/"))
            outgoing.method = .init(rawValue: request.method.rawValue)
            for field in request.headers where field.name != .connection {
                outgoing.headers.add(name: field.name.rawName, value: field.value)
            }
            let answer = try await client.execute(outgoing, timeout: .seconds(30))
            var headers = HTTPFields()
            for (name, value) in answer.headers where name.lowercased() != "connection" {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            return Response(
                status: .init(code: Int(answer.status.code)), headers: headers, body: ResponseBody(asyncSequence: answer.body))
        }
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
        try await client.shutdown()
    }
}
