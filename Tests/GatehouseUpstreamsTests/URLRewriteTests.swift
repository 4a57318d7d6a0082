import GatehouseCore
import GatehouseUpstreams
import HTTPTypes
import Testing

/// Rendering a `rewritePattern`: operator values inserted as they are, client values encoded.
@Suite struct URLRewriteTests {
    func render(_ pattern: String, params: [(String, String)] = [], query: String? = nil, custom: [String: String] = [:], greedy: String? = nil) throws -> String {
        let inputs = RewriteInputs(
            custom: custom, params: params.map { (name: $0.0, value: $0.1) }, query: query, headers: [:],
            environment: ConfigEnvironment(values: ["BASE": "https://backend"]), method: .get, path: "/v1/x", greedyParameter: greedy)
        return try RewritePattern(pattern).render(inputs)
    }

    @Test func clientValuesCannotAddSegmentsOrQueryParameters() throws {
        #expect(try render("${env.BASE}/users/${params.id}", params: [("id", "a/b?c=d")]) == "https://backend/users/a%2Fb%3Fc=d")
        #expect(try render("${env.BASE}/search?q=${query.q}", query: "q=a%26b%3Dc") == "https://backend/search?q=a%26b%3Dc")
    }

    @Test func aGreedyParameterKeepsItsSlashes() throws {
        #expect(try render("${context.custom.base}/${params.path}", params: [("path", "a/b c/d")], custom: ["base": "https://t/acme"], greedy: "path")
            == "https://t/acme/a/b%20c/d")
    }

    @Test func aMissingContextValueIsAConfigurationProblem() {
        #expect(throws: Problem.self) { try render("${context.custom.base}/x") }
    }

    @Test func theResultMustBeAnAbsoluteHTTPURL() {
        #expect(throws: Problem.self) { try render("${context.custom.base}/x", custom: ["base": "file:///etc"]) }
    }

    @Test func theClientQueryIsAppendedWithTheRightSeparator() {
        #expect(appendingQuery("https://h/a", "x=1") == "https://h/a?x=1")
        #expect(appendingQuery("https://h/a?k=v", "x=1") == "https://h/a?k=v&x=1")
        #expect(appendingQuery("https://h/a", nil) == "https://h/a")
    }
}

@Suite struct HopByHopTests {
    @Test func connectionScopedHeadersAndTheOnesConnectionNamesAreRemoved() {
        var fields: HTTPFields = [
            .connection: "close, x-secret", HTTPField.Name("x-secret")!: "1", HTTPField.Name("keep-alive")!: "timeout=5",
            .transferEncoding: "chunked", .te: "trailers", .upgrade: "h2c", HTTPField.Name("x-kept")!: "yes",
        ]
        HopByHop.strip(&fields)
        #expect(fields.map(\.name.canonicalName) == ["x-kept"])
    }
}
