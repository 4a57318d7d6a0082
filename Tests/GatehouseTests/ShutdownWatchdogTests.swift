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

    /// The path production uses: a real signal arms it (SIGUSR1 here, not to stop the tests).
    @Test func aSignalArmsIt() {
        let flag = Flag()
        let watchdog = ShutdownWatchdog(delay: .milliseconds(10)) { flag.fired.signal() }
        watchdog.watchSignals([SIGUSR1])
        // The source is registered asynchronously, and a signal before that is ignored: repeat
        // it until the watchdog fires (arming is once, so repeats change nothing after).
        var fired = false
        for _ in 0..<600 where !fired {
            kill(getpid(), SIGUSR1)
            fired = flag.fired.wait(timeout: .now() + 0.05) == .success
        }
        #expect(fired, "the signal did not arm the watchdog")
    }

    @Test func doesNothingUntilArmed() {
        let flag = Flag()
        let watchdog = ShutdownWatchdog(delay: .milliseconds(10)) { flag.fired.signal() }
        watchdog.watchSignals([SIGUSR2]) // never SIGTERM here: the test process would then ignore it
        #expect(flag.fired.wait(timeout: .now() + 0.3) == .timedOut)
    }
}
