import GatehouseCore
import GatehouseLua
import Logging
import NIOCore

/// The asynchronous operations host functions ask for (fetches, loader waits, body reads) and
/// background loads.
extension PolicyRuntime {
    // MARK: Asynchronous operations requested by host functions

    enum PendingResult: Sendable {
        case text(String)
        case failure(String)
        case json(JSONValue)
        /// A response added to the request (pushed as rid, index).
        case response(Int)
        case responses([Result<Int, FetchFailure>])
        /// Several values (pushed in order).
        case values([JSONValue])
    }

    /// Runs `operation`, abandoning it after `remaining` (the invocation's wall-clock budget
    /// left, if it has one). Fetches carry the bound as their own timeout, and a body already in
    /// memory is no wait at all, and Redis commands have their own timeout: only a loader wait and a body still arriving need a timer of
    /// their own (``withTimeout(_:_:)`` costs two tasks, so it is not used where it need not be).
    func perform(_ operation: PendingOperation, state: RequestState, within remaining: Duration?) async -> PendingResult {
        guard let remaining else { return await perform(operation, state: state) }
        switch operation {
        case .fetch(var request):
            request.timeout = min(request.timeout, remaining)
            return await perform(.fetch(request), state: state)
        case .fetchAll(let requests):
            return await perform(.fetchAll(requests.map { var r = $0; r.timeout = min(r.timeout, remaining); return r }), state: state)
        case .readBody(let index):
            if case .stream = index == 0 ? state.body : state.responses[index - 1].body { break }
            return await perform(operation, state: state)
        case .redisZone, .redisRateLimit:
            // Bounded by Redis' command timeout (milliseconds, far below any Lua budget).
            return await perform(operation, state: state)
        case .awaitLoad:
            break
        }
        return await withTimeout(remaining) { await self.perform(operation, state: state) } ?? .failure("wall-clock budget exceeded")
    }

    func perform(_ operation: PendingOperation, state: RequestState) async -> PendingResult {
        switch operation {
        case .fetch(let request):
            return await fetch(request, state: state)
        case .fetchAll(let requests):
            let outcomes = await withTaskGroup(of: (Int, Result<ResponseState, FetchFailure>).self) { group in
                for (i, request) in requests.enumerated() {
                    group.addTask { (i, await self.fetchResponse(request)) }
                }
                var collected = [Result<ResponseState, FetchFailure>](repeating: .failure(FetchFailure("not run")), count: requests.count)
                for await (i, result) in group { collected[i] = result }
                return collected
            }
            return .responses(outcomes.map { $0.map { state.addResponse($0) } })
        case .awaitLoad(let load):
            switch await load.value {
            case .success(let value): return .json(value)
            case .failure(let failure): return .failure(failure.message)
            }
        case .redisZone(let operation):
            guard let redis else { return .failure("no Redis store is configured") }
            let zones = RedisZoneStore(client: redis)
            switch operation {
            case .get(let zone, let key):
                switch await zones.get(zone: zone, key: key) {
                case .success(let value): return .json(value ?? .null)
                case .failure(let error): return .failure(error.description)
                }
            case .put(let zone, let key, let value, let ttl):
                switch await zones.put(zone: zone, key: key, value: value, ttl: ttl) {
                case .success: return .json(.bool(true))
                case .failure(let error): return .failure(error.description)
                }
            case .delete(let zone, let key):
                switch await zones.delete(zone: zone, key: key) {
                case .success: return .json(.bool(true))
                case .failure(let error): return .failure(error.description)
                }
            }
        case .redisRateLimit(let key, let limit):
            guard let redis else { return .failure("no Redis store is configured") }
            switch await RedisRateLimiter(client: redis).check(tenant: key, scope: "lua", limit) {
            case .success(let decision):
                return .values([.bool(decision.allowed), .int(Int64(decision.remaining)), .int(decision.retryAfter.map { RateLimitInbound.seconds($0) } ?? 0)])
            case .failure(let error):
                return .failure(error.description)
            }
        case .readBody(let index):
            let body = index == 0 ? state.body : state.responses[index - 1].body
            switch body {
            case .empty: return .text("")
            case .buffered(let buffer): return .text(String(buffer: buffer))
            case .stream(let stream):
                do {
                    let buffer = try await stream.collect(limit: maxBufferedBodyBytes)
                    if index == 0 { state.body = .buffered(buffer) } else { state.responses[index - 1].body = .buffered(buffer) }
                    return .text(String(buffer: buffer))
                } catch let error as BodyTooLarge {
                    if index == 0 {
                        state.forcedProblem = Problem(
                            status: .contentTooLarge, type: Problem.Kind.payloadTooLarge,
                            detail: "The request body exceeds the limit of \(error.limit) bytes.")
                    }
                    return .failure("body exceeds the limit of \(error.limit) bytes")
                } catch {
                    return .failure("the body could not be read: \(error)")
                }
            }
        }
    }

    func fetchResponse(_ request: FetchRequest) async -> Result<ResponseState, FetchFailure> {
        guard let fetcher = services.fetcher else { return .failure(FetchFailure("http.fetch is not available in this process")) }
        return await fetcher.fetch(request, maxBodyBytes: max(maxBufferedBodyBytes, 8 << 20))
    }

    func fetch(_ request: FetchRequest, state: RequestState) async -> PendingResult {
        switch await fetchResponse(request) {
        case .success(let response): return .response(state.addResponse(response))
        case .failure(let failure): return .failure(failure.message)
        }
    }

    // MARK: Background loads

    /// Runs loader `name`'s Lua load function for `key` on this VM, bounded by its timeout.
    func runLoad(_ name: String, key: String) async -> Result<JSONValue, FetchFailure> {
        let timeout = services.loaders.options(name)?.timeout ?? .seconds(10)
        let state = RequestState.background(label: "loader \(name)")
        // The load itself is not interrupted (Lua code runs to completion on its VM); a late
        // value is discarded.
        let outcome = await withTimeout(timeout) { () -> Result<JSONValue, FetchFailure> in
            switch await self.run(.loader(name: name, key: key), state: state) {
            case .value(let value): return .success(value)
            case .failed(let failure): return .failure(FetchFailure(failure.message))
            default: return .failure(FetchFailure("the load function returned nothing"))
            }
        } ?? .failure(FetchFailure("the load did not finish within \(timeout)"))
        await finish(state)
        if case .failure(let failure) = outcome {
            logger.warning("loader failed; the last good value (if any) keeps being served", metadata: [
                "loader": .string(name), "key": .string(key), "error": .string(failure.message),
            ])
        }
        services.loaders.finish(name, key, outcome)
        return outcome
    }

}
