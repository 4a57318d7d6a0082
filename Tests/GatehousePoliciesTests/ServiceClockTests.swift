import GatehousePolicies
import Testing

@Suite struct ServiceClockTests {
    @Test func aManualClockMovesOnlyWhenAdvanced() {
        let clock = ServiceClock.manual()
        let start = clock.now
        #expect(clock.now == start)
        clock.advance(by: .seconds(90))
        #expect(clock.now - start == .seconds(90))
    }

    @Test func theSystemClockIgnoresAdvance() {
        let before = ServiceClock.system.now
        ServiceClock.system.advance(by: .seconds(3600))
        #expect(ServiceClock.system.now - before < .seconds(3600))
    }
}
