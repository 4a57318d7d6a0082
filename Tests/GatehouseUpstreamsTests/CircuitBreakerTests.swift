import GatehouseCore
import GatehouseUpstreams
import NIOCore
import Testing

/// The breaker of one target, driven with explicit times (no sleeping, no timing assertions).
@Suite struct CircuitBreakerTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    func at(_ ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }

    func breaker(threshold: Int = 3, timeout: Int = 1000, halfOpenMax: Int = 2, maxTimeout: Int? = nil, rate: CircuitBreakerConfig.FailureRate? = nil,
                 probeDeadline: TimeAmount = .seconds(5)) -> TargetHealth {
        TargetHealth(breaker: CircuitBreakerConfig(threshold: threshold, openMilliseconds: timeout, halfOpenMax: halfOpenMax, maxOpenMilliseconds: maxTimeout, failureRate: rate),
                     probeDeadline: probeDeadline)
    }

    func fail(_ h: TargetHealth, times: Int, at now: NIODeadline) {
        for _ in 0..<times {
            guard let a = h.admit(at: now) else { Issue.record("not admitted"); return }
            h.record(a, .failure, at: now)
        }
    }

    @Test func opensAfterThresholdConsecutiveFailuresAndFailsFast() {
        let h = breaker()
        fail(h, times: 2, at: at(0))
        #expect(h.report(at: at(0)).breaker == .closed)
        // A success in between resets the count.
        h.record(h.admit(at: at(0))!, .success, at: at(0))
        fail(h, times: 2, at: at(0))
        #expect(h.report(at: at(0)).breaker == .closed)
        fail(h, times: 1, at: at(1))
        #expect(h.report(at: at(1)).breaker == .open)
        #expect(h.admit(at: at(2)) == nil, "open: nothing is sent")
        #expect(h.admit(at: at(1000)) == nil, "still open just before the timeout")
        #expect(h.reopensIn(at: at(501)) == .milliseconds(500))
    }

    @Test func halfOpenLetsExactlyHalfOpenMaxProbesThrough() {
        let h = breaker(halfOpenMax: 2)
        fail(h, times: 3, at: at(0))
        let p1 = h.admit(at: at(1000))
        let p2 = h.admit(at: at(1000))
        #expect(p1 != nil && p2 != nil)
        #expect(h.admit(at: at(1000)) == nil, "a third concurrent probe is refused")
        #expect(h.report(at: at(1000)).breaker == .halfOpen)
        // A probe that ends without a verdict (client gone) frees its slot.
        h.record(p2!, .neutral, at: at(1001))
        let p3 = h.admit(at: at(1001))
        #expect(p3 != nil)
        h.record(p1!, .success, at: at(1002))
        #expect(h.report(at: at(1002)).breaker == .closed, "a probe's success closes it")
        // The late probe's verdict no longer counts.
        h.record(p3!, .failure, at: at(1003))
        #expect(h.report(at: at(1003)).breaker == .closed)
    }

    @Test func aFailedProbeOpensItAgain() {
        let h = breaker(halfOpenMax: 1)
        fail(h, times: 3, at: at(0))
        let probe = h.admit(at: at(1000))!
        h.record(probe, .failure, at: at(1000))
        #expect(h.report(at: at(1000)).breaker == .open)
        #expect(h.admit(at: at(1999)) == nil)
        #expect(h.admit(at: at(2000)) != nil)
    }

    @Test func aProbeThatNeverReportsFreesItsSlotAtItsDeadline() {
        let h = breaker(halfOpenMax: 1, probeDeadline: .milliseconds(300))
        fail(h, times: 3, at: at(0))
        let lost = h.admit(at: at(1000))
        #expect(lost != nil)
        #expect(h.admit(at: at(1299)) == nil)
        let next = h.admit(at: at(1300))
        #expect(next != nil, "the breaker never sticks half-open")
        h.record(lost!, .failure, at: at(1301))
        #expect(h.report(at: at(1301)).breaker == .halfOpen, "the expired probe has no say")
        h.record(next!, .success, at: at(1302))
        #expect(h.report(at: at(1302)).breaker == .closed)
    }

    @Test func openTimeBacksOffUpToTheCap() {
        let h = breaker(threshold: 1, timeout: 1000, halfOpenMax: 1, maxTimeout: 2500)
        fail(h, times: 1, at: at(0))                      // open 1000
        var probe = h.admit(at: at(1000))!
        h.record(probe, .failure, at: at(1000))            // open 2000
        #expect(h.admit(at: at(2999)) == nil)
        probe = h.admit(at: at(3000))!
        h.record(probe, .failure, at: at(3000))            // open 2500 (capped)
        #expect(h.admit(at: at(5499)) == nil)
        probe = h.admit(at: at(5500))!
        h.record(probe, .success, at: at(5500))
        fail(h, times: 1, at: at(6000))                   // after a close: 1000 again
        #expect(h.admit(at: at(7000)) != nil)
    }

    @Test func failureRateOverTheWindow() {
        let h = breaker(threshold: 100, rate: .init(rate: 0.5, windowMilliseconds: 1000, minimumRequests: 10))
        // 9 requests, 5 failures: below the minimum count.
        for i in 0..<9 {
            let a = h.admit(at: at(Int64(i)))!
            h.record(a, i % 2 == 0 ? .failure : .success, at: at(Int64(i)))
        }
        #expect(h.report(at: at(10)).breaker == .closed)
        let a = h.admit(at: at(10))!
        h.record(a, .success, at: at(10))                 // 10 requests, 5 failures: 50%
        #expect(h.report(at: at(10)).breaker == .closed, "the rate is checked when a failure is counted")
        let b = h.admit(at: at(11))!
        h.record(b, .failure, at: at(11))
        #expect(h.report(at: at(11)).breaker == .open)
    }

    @Test func oldFailuresLeaveTheWindow() {
        let h = breaker(threshold: 100, rate: .init(rate: 0.5, windowMilliseconds: 1000, minimumRequests: 4))
        fail(h, times: 3, at: at(0))
        for i in 0..<4 { h.record(h.admit(at: at(2000 + Int64(i)))!, .success, at: at(2000 + Int64(i))) }
        fail(h, times: 1, at: at(2010))
        #expect(h.report(at: at(2010)).breaker == .closed, "1 failure in 5 within the window")
    }

    @Test func withoutABreakerFailuresNeverOpenIt() {
        let h = TargetHealth(breaker: nil, probeDeadline: .seconds(1))
        for _ in 0..<50 { h.record(h.admit(at: at(0))!, .failure, at: at(0)) }
        #expect(h.admit(at: at(0)) != nil)
    }

    @Test func activeChecksNeedConsecutiveResults() {
        let h = TargetHealth(breaker: nil, probeDeadline: .seconds(1))
        let check = ActiveHealthCheck(path: "/h", healthyThreshold: 2, unhealthyThreshold: 3)
        #expect(h.recordCheck(ok: false, check: check))
        #expect(h.recordCheck(ok: false, check: check))
        #expect(h.recordCheck(ok: true, check: check), "a good probe resets the streak")
        #expect(h.recordCheck(ok: false, check: check))
        #expect(h.recordCheck(ok: false, check: check))
        #expect(!h.recordCheck(ok: false, check: check))
        #expect(h.admit(at: at(0)) == nil, "an unhealthy target gets no request")
        #expect(!h.recordCheck(ok: true, check: check))
        #expect(h.recordCheck(ok: true, check: check))
        #expect(h.admit(at: at(0)) != nil)
    }

    @Test func removingTheActiveCheckMakesAnUnhealthyTargetHealthy() {
        let h = TargetHealth(breaker: nil, probeDeadline: .seconds(1))
        let check = ActiveHealthCheck(path: "/h", unhealthyThreshold: 1)
        #expect(!h.recordCheck(ok: false, check: check))
        h.reconfigure(breaker: nil, probeDeadline: .seconds(1), activeCheck: true)
        #expect(h.admit(at: at(0)) == nil, "still checked: still out")
        h.reconfigure(breaker: nil, probeDeadline: .seconds(1), activeCheck: false)
        #expect(h.admit(at: at(0)) != nil, "nothing could put it back otherwise")
    }
}
