import Foundation
import GatehouseCore
import Testing

@Suite struct ProblemTests {
    @Test func bodyIsRFC9457JSONWithRequestId() throws {
        let p = Problem(status: .init(code: 403), detail: "No \"quotes\"\nhere")
        let data = Data(p.body(instance: "/v1/x", requestId: "abc").utf8)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["type"] as? String == "about:blank")
        #expect(object?["title"] as? String == "Forbidden")
        #expect(object?["status"] as? Int == 403)
        #expect(object?["detail"] as? String == "No \"quotes\"\nhere")
        #expect(object?["instance"] as? String == "/v1/x")
        #expect(object?["requestId"] as? String == "abc")
    }

    @Test func requestIdsAreUniqueAndClientIdsAreValidated() {
        #expect(RequestID.next() != RequestID.next())
        #expect(RequestID.isAcceptable("abc-123_x.y:z"))
        #expect(!RequestID.isAcceptable("bad id"))
        #expect(!RequestID.isAcceptable(String(repeating: "a", count: 129)))
    }
}
