import GatehouseCore
import GatehouseUpstreams
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The upstream of a route test case: answers what the case says and remembers what it was sent.
final class StubUpstream: UpstreamForwarding {
    let answer: JSONValue
    private let received = NIOLockedValueBox<UpstreamClient.Request?>(nil)

    init(answer: JSONValue) { self.answer = answer }

    var request: UpstreamClient.Request? { received.withLockedValue { $0 } }

    func send(_ request: UpstreamClient.Request, logger: Logger) async throws(Problem) -> UpstreamClient.Response {
        received.withLockedValue { $0 = request }
        var headers = HTTPFields()
        for (name, value) in answer["headers"]?.objectValue ?? [:] {
            if let field = HTTPField.Name(name) { headers[field] = value.stringValue ?? String(decoding: value.serialized(), as: UTF8.self) }
        }
        let status = Int(answer["status"]?.intValue ?? 200)
        return .init(status: HTTPResponse.Status(code: status), headers: headers, body: PolicyTestRunner.body(answer["body"]))
    }
}
