import GatehouseCore
import Testing

/// `HeaderTemplate` alone: parsing, and the cleaning of what references bring (end to end,
/// swift-http-types would also blank a CR LF, so only this test shows the template does it).
@Suite struct HeaderTemplateTests {
    @Test func referencesParseAndRenderWithControlCharactersBlanked() throws {
        let template = try HeaderTemplate("id=${user.sub}; shard=${context.custom.shard}; ${request.method}")
        #expect(template.customNames == ["shard"])
        let text = template.render { part in
            switch part {
            case .user(let path): path == ["sub"] ? "alice\r\nX-Evil: 1\u{0}" : nil
            case .request(.contextCustom("shard")): "s7"
            case .request(.method): "GET"
            default: nil
            }
        }
        #expect(text == "id=alice  X-Evil: 1 ; shard=s7; GET")
        // Literal text is the operator's and kept as written.
        #expect(try HeaderTemplate("a\tb").render { _ in nil } == "a\tb")
    }

    @Test func unknownReferencesAndEmptyUserFieldsAreErrors() {
        #expect(throws: TemplateError.self) { try HeaderTemplate("${nope.x}") }
        #expect(throws: TemplateError.self) { try HeaderTemplate("${user.data..tier}") }
        #expect(throws: TemplateError.self) { try HeaderTemplate("${headers.x") }
    }
}
