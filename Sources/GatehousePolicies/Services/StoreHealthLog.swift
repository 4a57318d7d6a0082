import GatehouseRedis
import Logging

/// Logs a shared store (Redis) becoming unreachable, and reachable again, for one user of it (a
/// rate-limit policy) once per transition: a gateway taking thousands of requests a second while
/// Redis is down writes two lines, not thousands, and a recovery in which some event loops'
/// connections are back before others' is one transition (``RedisHealth``'s quiet period).
/// Kept across reloads by ``RuntimeServices``.
final class StoreHealthLog: Sendable {
    private let health = RedisHealth()

    /// The store failed for this request: logs when it was reachable before.
    func failed(_ error: any Error, what: String, fallback: String, logger: Logger) {
        guard health.failed() else { return }
        logger.error("\(what): the Redis store is unavailable (\(error)); \(fallback) until it is back")
    }

    /// The store answered: logs when it was down before.
    func succeeded(what: String, logger: Logger) {
        guard health.succeeded() else { return }
        logger.notice("\(what): the Redis store is reachable again")
    }
}
