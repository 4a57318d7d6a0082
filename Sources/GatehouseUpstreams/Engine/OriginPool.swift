import NIOCore

/// The connections of one event loop to one origin: idle ones ready for reuse (most recently
/// used first, so a burst's extra connections age out), a bound on how many may be open, and
/// the requests waiting for one. Touched only on `loop`.
final class OriginPool: @unchecked Sendable {
    let origin: UpstreamOrigin
    let loop: any EventLoop
    // Strong (the loop pool drops its origins at shutdown, which ends the cycle).
    private let owner: LoopPool
    private var idle: [UpstreamConnection] = []
    /// Open or connecting.
    private var total = 0
    private var waiting = CircularBuffer<(exchange: Exchange, deadline: NIODeadline)>()
    private var waitTimer: LazyTimer

    init(origin: UpstreamOrigin, owner: LoopPool) {
        self.origin = origin
        self.loop = owner.loop
        self.owner = owner
        self.waitTimer = LazyTimer(horizon: owner.configuration.responseTimeout)
        waitTimer.onFire = { [weak self] in self?.expireWaiters() }
    }

    private var configuration: EngineConfiguration { owner.configuration }

    /// Runs `exchange` on an idle connection, a new one, or, at the bound, the next one freed.
    func start(_ exchange: Exchange) {
        while let connection = idle.popLast() {
            if connection.isOpen {
                connection.run(exchange)
                return
            }
        }
        guard !owner.shuttingDown else { return exchange.fail(UpstreamError.shuttingDown) }
        if total < configuration.maxConnectionsPerOrigin {
            open(for: exchange)
        } else if waiting.count < configuration.maxWaitingPerOrigin {
            waiting.append((exchange, .now() + exchange.responseTimeout))
            if waiting.count == 1 { waitTimer.arm(waiting.first!.deadline, on: loop, stats: owner.counters) }
        } else {
            exchange.fail(UpstreamError.poolExhausted)
        }
    }

    /// A connection whose exchange ended cleanly: to the next waiter, or idle.
    func release(_ connection: UpstreamConnection) {
        if let next = nextWaiter() {
            connection.run(next)
        } else if owner.shuttingDown {
            connection.close()
        } else {
            idle.append(connection)
        }
    }

    /// A connection closed (by either side): a waiter may now open a new one.
    func closed(_ connection: UpstreamConnection) {
        total -= 1
        owner.counters.openConnections -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: index) }
        if total < configuration.maxConnectionsPerOrigin, !owner.shuttingDown, let next = nextWaiter() {
            open(for: next)
        }
    }

    func closeAll() {
        for connection in idle { connection.close() }
        idle.removeAll()
        while let next = nextWaiter() { next.fail(UpstreamError.shuttingDown) }
    }

    private func open(for exchange: Exchange) {
        total += 1
        owner.counters.openConnections += 1
        owner.connect(origin, for: self, timeout: exchange.connectTimeout).assumeIsolatedUnsafeUnchecked().whenComplete { result in
            switch result {
            case .success(let connection):
                self.owner.counters.connectionsOpened += 1
                if exchange.isEnded || exchange.cancelled {
                    // The caller gave up while connecting: keep the connection for the next one.
                    connection.becameIdle()
                    self.release(connection)
                } else {
                    connection.run(exchange)
                }
            case .failure(let error):
                self.total -= 1
                self.owner.counters.openConnections -= 1
                if case ChannelError.connectTimeout = error {
                    exchange.fail(UpstreamError.connectTimeout)
                } else {
                    exchange.fail(UpstreamError.connectFailed(error))
                }
                // Each waiter gets its own attempt (and its own error) rather than this one's.
                if !self.owner.shuttingDown, let next = self.nextWaiter() { self.open(for: next) }
            }
        }
    }

    private func nextWaiter() -> Exchange? {
        while let next = waiting.popFirst() {
            if !next.exchange.isEnded && !next.exchange.cancelled { return next.exchange }
        }
        return nil
    }

    /// Fails the waiters whose wait is over; checked by one lazily re-armed timer.
    private func expireWaiters() {
        guard waitTimer.checkFired(on: loop, stats: owner.counters) else { return }
        let now = NIODeadline.now()
        while let first = waiting.first, first.deadline <= now || first.exchange.isEnded {
            waiting.removeFirst()
            first.exchange.fail(UpstreamError.poolExhausted)
        }
        if let first = waiting.first { waitTimer.arm(first.deadline, on: loop, stats: owner.counters) }
    }
}
