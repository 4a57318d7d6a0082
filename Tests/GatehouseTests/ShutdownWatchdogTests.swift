import Foundation
import Gatehouse
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
