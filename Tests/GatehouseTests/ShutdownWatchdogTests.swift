import Foundation
import Gatehouse
import GatehouseTesting
import Testing

@Suite struct ShutdownWatchdogTests {
    final class Flag: @unchecked Sendable {
        let fired = DispatchSemaphore(value: 0)
        var count = 0
    }

    @Test func firesOnceAfterItsDelay() {
        let flag = Flag()
        let watchdog = ShutdownWatchdog(delay: .milliseconds(50)) {
            flag.count += 1
            flag.fired.signal()
        }
        watchdog.arm()
        watchdog.arm() // a second signal does not restart or double the countdown
        #expect(flag.fired.wait(timeout: .now() + 30) == .success, "the watchdog never fired")
        Thread.sleep(forTimeInterval: 0.2)
        #expect(flag.count == 1)
    }

    @Test func doesNothingUntilArmed() {
        let flag = Flag()
        let watchdog = ShutdownWatchdog(delay: .milliseconds(10)) { flag.fired.signal() }
        watchdog.watchSignals()
        #expect(flag.fired.wait(timeout: .now() + 0.3) == .timedOut)
    }
}

@Suite struct RawHTTPTests {
    @Test(arguments: ["\r\n", "\r\n0\r\n\r\n", "zz\r\nabc\r\n0\r\n\r\n", "5\r\nab", "3\r\nabc\r\n", ";x\r\n"])
    func aMalformedChunkedBodyFailsTheTestInsteadOfTrapping(_ body: String) {
        #expect(throws: (any Error).self) { try RawHTTP.dechunk(body) }
    }

    @Test func aWellFormedChunkedBodyDecodes() throws {
        #expect(try RawHTTP.dechunk("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") == "abcde")
    }
}
