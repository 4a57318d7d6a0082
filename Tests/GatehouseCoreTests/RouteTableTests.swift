import GatehouseCore
import HTTPTypes
import Testing

@Suite struct RouteTableTests {
    func route(_ method: HTTPRequest.Method, _ path: String) throws -> RouteConfig {
        RouteConfig(
            template: try RouteTemplate(path), method: method, operationId: nil,
            handler: .staticResponse(status: 200, headers: [], body: path), inbound: [], outbound: [],
            location: ConfigError(file: "routes.oas.json", message: ""))
    }

    func winner(_ table: RouteTable, _ method: HTTPRequest.Method, _ path: String) throws -> String? {
        if case .found(_, let route, _) = table.match(method: method, segments: try PathCoding.segments(of: path[...])) {
            return route.template.text
        }
        return nil
    }

    @Test func literalBeatsParameterBeatsGreedyWhateverTheDocumentOrder() throws {
        let table = RouteTable([
            try route(.get, "/v1/{+path}"),
            try route(.get, "/v1/{id}"),
            try route(.get, "/v1/me"),
        ])
        #expect(try winner(table, .get, "/v1/me") == "/v1/me")
        #expect(try winner(table, .get, "/v1/42") == "/v1/{id}")
        #expect(try winner(table, .get, "/v1/42/orders") == "/v1/{+path}")
        #expect(try winner(table, .get, "/v1") == "/v1/{+path}")
    }

    @Test func parametersAreDecodedAndGreedyTakesTheRest() throws {
        let table = RouteTable([try route(.get, "/users/{id}/files/{+rest}")])
        guard case .found(_, _, let params) = table.match(method: .get, segments: try PathCoding.segments(of: "/users/a%20b/files/x/y.txt")) else {
            Issue.record("no match")
            return
        }
        #expect(params.map(\.name) == ["id", "rest"])
        #expect(params.map(\.value) == ["a b", "x/y.txt"])
    }

    @Test func methodMismatchIs405WithAllowedMethodsAndUnknownPathIs404() throws {
        let table = RouteTable([try route(.get, "/items"), try route(.post, "/items")])
        guard case .methodNotAllowed(let allowed) = table.match(method: .delete, segments: ["items"]) else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == [.get, .post])
        guard case .notFound = table.match(method: .get, segments: ["other"]) else {
            Issue.record("expected 404")
            return
        }
    }

    @Test func headIsServedByGetRoutes() throws {
        let table = RouteTable([try route(.get, "/items")])
        #expect(try winner(table, .head, "/items") == "/items")
    }

    @Test(arguments: ["v1", "/v1/{id", "/v1/x{id}", "/v1/{+rest}/more", "/v1/{a}/{a}"])
    func invalidTemplatesAreRefused(_ text: String) {
        #expect(throws: TemplateError.self) { try RouteTemplate(text) }
    }
}

@Suite struct PathCodingTests {
    @Test(arguments: ["/a/../b", "/a/%2e%2e/b", "/a/%2E/b", "/a/./b", "/a%00b", "/a/%zz", "/a/%4", "relative"])
    func trickyPathsAreRejectedBeforeRouting(_ path: String) {
        #expect(throws: PathCoding.Rejection.self) { try PathCoding.segments(of: path[...]) }
    }

    @Test func emptySegmentsCollapse() throws {
        #expect(try PathCoding.segments(of: "//a///b/") == ["a", "b"])
    }

    @Test func encodingKeepsValuesInsideTheirComponent() {
        #expect(PathCoding.encodePathSegment("a/b?c#d e") == "a%2Fb%3Fc%23d%20e")
        #expect(PathCoding.encodeQueryComponent("a&b=c d") == "a%26b%3Dc%20d")
        #expect(PathCoding.queryItems("a=1&b=x+y&c=%2F") .map { "\($0.name)=\($0.value)" } == ["a=1", "b=x y", "c=/"])
    }
}

@Suite struct PathNormaliserTests {
    @Test(arguments: [
        ("/v1/a/b", "/v1/a/b"), ("//v1//a/", "/v1/a/"), ("/a%20b/%7E", "/a%20b/~"), ("/", "/"), ("/a/b/", "/a/b/"),
        ("/x:y@z/!$&'()*+,;=", "/x:y@z/!$&'()*+,;="), ("/%41", "/A"),
    ])
    func theCanonicalPathIsWhatRoutingSaw(_ raw: String, _ expected: String) throws {
        let segments = try PathCoding.segments(of: raw[...])
        #expect(PathCoding.canonicalPath(of: raw[...], segments: segments) == expected)
        #expect(PathCoding.canonicalPath(segments, trailingSlash: raw.count > 1 && raw.hasSuffix("/")) == expected)
    }

    @Test(arguments: [
        ("http://h/a/../b", true), ("http://h/a/%2e%2E/b", true), ("http://h/./x", true), ("http://h/a/.%2e", true),
        ("http://h/a/...", false), ("http://h/a/%2e%2e%2e", false), ("http://h/a/b?x=/../", false), ("http://h", false),
        ("http://h/a/..#frag", true), ("http://h/a.b/c..d", false), ("http://h/%2e%2e?q", true),
    ])
    func dotSegmentsAreFoundHoweverSpelled(_ url: String, _ expected: Bool) {
        #expect(PathCoding.hasDotSegment(inURL: url) == expected, "\(url)")
    }
}
