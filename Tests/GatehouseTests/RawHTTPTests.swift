import GatehouseTesting
import Testing

/// The raw-socket client of the tests must fail one test on bad input, never trap.
@Suite struct RawHTTPTests {
    @Test(arguments: ["\r\n", "\r\n0\r\n\r\n", "zz\r\nabc\r\n0\r\n\r\n", "5\r\nab", "3\r\nabc", ";x\r\n", "3\r\nabc\r\n2"])
    func aMalformedChunkedBodyFailsTheTestInsteadOfTrapping(_ body: String) {
        #expect(throws: (any Error).self) { try RawHTTP.dechunk(body) }
    }

    @Test func aWellFormedChunkedBodyDecodes() throws {
        let whole = try RawHTTP.dechunk("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        #expect(whole.body == "abcde" && whole.complete)
        let cut = try RawHTTP.dechunk("3\r\nabc\r\n")
        #expect(cut.body == "abc" && !cut.complete, "a body without its last chunk is marked as cut")
    }
}
