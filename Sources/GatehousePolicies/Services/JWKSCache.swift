import Foundation
import GatehouseCore
import JWTKit
import Logging
import NIOConcurrencyHelpers

/// Signing keys fetched from JWKS URLs, shared by every policy and VM and kept across reloads.
/// One fetch per URL at a time; a failed fetch keeps the last good set.
final class JWKSCache: Sendable {
    struct Keys: Sendable {
        let collection: JWTKeyCollection
        let kids: Set<String>
        let fetchedAt: ContinuousClock.Instant
    }

    private struct Entry {
        var keys: Keys?
        var lastForced: ContinuousClock.Instant?
        var inflight: Task<Keys?, Never>?
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let clock: ServiceClock

    init(clock: ServiceClock = .system) {
        self.clock = clock
    }

    /// The keys for `url`: cached while younger than `maxAge`; `forceRefresh` refetches, but at
    /// most once per `minRefreshInterval`. Nil only when no set was ever fetched.
    func keys(url: String, maxAge: Duration, forceRefresh: Bool, minRefreshInterval: Duration, fetcher: (any HTTPFetching)?, logger: Logger) async -> Keys? {
        let now = clock.now
        let task: Task<Keys?, Never>? = entries.withLockedValue { entries in
            var entry = entries[url] ?? Entry()
            if let inflight = entry.inflight { return inflight }
            var due = entry.keys == nil || now - entry.keys!.fetchedAt > maxAge
            if forceRefresh, entry.lastForced.map({ now - $0 >= minRefreshInterval }) ?? true {
                due = true
                entry.lastForced = now
            }
            guard due else { return nil }
            let previous = entry.keys
            let task = Task { () -> Keys? in
                let fetched = await Self.fetch(url, fetcher: fetcher, logger: logger, clock: self.clock)
                self.entries.withLockedValue { entries in
                    entries[url]?.inflight = nil
                    if let fetched { entries[url]?.keys = fetched }
                }
                return fetched ?? previous
            }
            entry.inflight = task
            entries[url] = entry
            return task
        }
        if let task { return await task.value }
        return entries.withLockedValue { $0[url]?.keys }
    }

    private static func fetch(_ url: String, fetcher: (any HTTPFetching)?, logger: Logger, clock: ServiceClock) async -> Keys? {
        guard let fetcher else { return nil }
        let request = FetchRequest(url: url, method: .get, headers: [:], body: nil, timeout: .seconds(5))
        switch await fetcher.fetch(request, maxBodyBytes: 1 << 20) {
        case .failure(let failure):
            logger.warning("JWKS fetch failed; keeping the last good keys", metadata: ["url": .string(url), "error": .string(failure.message)])
            return nil
        case .success(let response):
            guard response.status.code == 200, case .buffered(let body) = response.body else {
                logger.warning("JWKS fetch failed; keeping the last good keys", metadata: ["url": .string(url), "status": .stringConvertible(response.status.code)])
                return nil
            }
            do {
                let jwks = try JSONDecoder().decode(JWKS.self, from: Data(body.readableBytesView))
                let collection = JWTKeyCollection()
                try await collection.add(jwks: jwks)
                let kids = Set(jwks.keys.compactMap { $0.keyIdentifier?.string })
                return Keys(collection: collection, kids: kids, fetchedAt: clock.now)
            } catch {
                logger.warning("JWKS is not valid; keeping the last good keys", metadata: ["url": .string(url), "error": .string("\(error)")])
                return nil
            }
        }
    }
}
