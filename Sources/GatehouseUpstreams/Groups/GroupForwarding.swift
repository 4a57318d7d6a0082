public import GatehouseCore
public import HTTPTypes
public import Logging
public import NIOCore

extension UpstreamForwarding {
    /// Forwards to a target of `group`, by the same proxy rules as
    /// ``forward(url:method:headers:body:client:preserveHost:requestId:logger:)``, and tells the
    /// target's breaker how it went.
    ///
    /// `path` (and `query`, byte for byte) is joined onto the chosen target's URL. A request
    /// that failed before the upstream answered is retried once when that is safe (idempotent,
    /// body replayable, not a timeout, not cancelled): on another available target, or the
    /// same one when it is the only one. An answer with a `retryOn` status is retried once on
    /// another target (never the same). No available target: 503 naming the group.
    public func forward(
        group: UpstreamGroup, path: String, query: String?, method: HTTPRequest.Method, headers: HTTPFields, body: MessageBody,
        client: ClientInfo, preserveHost: Bool, hashKey: String?, requestId: String, logger: Logger, responseTimeout: TimeAmount? = nil
    ) async throws(Problem) -> (response: UpstreamClient.Response, sentBody: MessageBody) {
        let headers = ProxyRules.proxyHeaders(headers, client: client, preserveHost: preserveHost)
        let body = try await ProxyRules.bufferedIfSmall(body)
        let connectTimeout = group.config.connectTimeoutMilliseconds.map { TimeAmount.milliseconds(Int64($0)) }
        let responseTimeout = responseTimeout ?? group.config.responseTimeoutMilliseconds.map { TimeAmount.milliseconds(Int64($0)) }
        var tried: Set<Int> = []
        var firstFailure: Problem?
        var next = group.acquire(hashKey: hashKey)
        while true {
            guard let lease = next ?? (tried.isEmpty ? nil : group.acquire(hashKey: hashKey)) else {
                // Nothing to retry on (the failure may just have opened the only breaker): the
                // failure itself is the answer.
                throw firstFailure ?? group.unavailableProblem()
            }
            next = nil
            var url = PathJoin.join(lease.url, path)
            if let query { url += "?" + query }
            let outgoing = UpstreamClient.Request(
                url: url, method: method, headers: headers, body: body, connectTimeout: connectTimeout, responseTimeout: responseTimeout)
            var response: UpstreamClient.Response
            do {
                response = try await send(outgoing, logger: logger)
            } catch {
                let countsAgainstTarget = !Task.isCancelled && ProxyRules.upstreamFault(error)
                lease.finish(countsAgainstTarget ? .failure : .neutral)
                guard tried.isEmpty, ProxyRules.mayRetry(method: method, body: body, after: error) else { throw error }
                tried.insert(lease.target)
                firstFailure = error
                next = group.acquire(excluding: tried, hashKey: hashKey)
                logger.info("retrying an idempotent request once after an upstream failure", metadata: [
                    "request-id": .string(requestId), "group": .string(group.name),
                ])
                continue
            }
            let code = response.status.code
            let failed = group.config.failureStatuses.contains(code)
            // `retryOn`: an answer such as 503 from one target, for a request that may be
            // sent again, goes to another target once; its body is dropped unread (the
            // connection is then closed, never reused). Without another target the answer
            // stands.
            if tried.isEmpty, group.config.retryStatuses.contains(code), ProxyRules.idempotent.contains(method), ProxyRules.replayable(body),
               !Task.isCancelled, let other = group.acquire(excluding: [lease.target], hashKey: hashKey) {
                lease.finish(failed ? .failure : .success)
                tried.insert(lease.target)
                next = other
                logger.info("retrying an idempotent request on another target after a \(code) answer", metadata: [
                    "request-id": .string(requestId), "group": .string(group.name),
                ])
                continue
            }
            if !failed, case .stream(let stream) = response.body {
                // The lease ends with the body (see LeasedChunks).
                response.body = .stream(LeasedChunks.wrap(stream, lease: lease))
            } else {
                lease.finish(failed ? .failure : .success)
            }
            return (response, body)
        }
    }
}
