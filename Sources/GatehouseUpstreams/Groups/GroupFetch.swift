import Foundation
import GatehouseCore
import NIOCore

extension UpstreamClient {
    /// `http.fetch` addressed to a group: the same target choice, breakers and failover as
    /// forwarding. `request.url` is the path (and query) joined onto the chosen target's URL.
    /// A failure before any answer is retried once on another target when the method is
    /// idempotent; a timeout is not retried.
    public func fetch(group: UpstreamGroup, _ request: Request, timeout: Duration, maxBodyBytes: Int) async -> Result<Response, FetchError> {
        var tried: Set<Int> = []
        var firstFailure: FetchError?
        while true {
            guard let lease = group.acquire(excluding: tried) ?? (tried.isEmpty ? nil : group.acquire()) else {
                return .failure(firstFailure ?? FetchError(message: "no target of upstream group '\(group.name)' is available"))
            }
            var outgoing = request
            outgoing.url = PathJoin.join(lease.url, request.url)
            let callTimeout = TimeAmount(timeout)
            outgoing.connectTimeout = min(group.config.connectTimeoutMilliseconds.map { .milliseconds(Int64($0)) } ?? callTimeout, callTimeout)
            switch await fetch(outgoing, timeout: timeout, maxBodyBytes: maxBodyBytes) {
            case .success(let response):
                lease.finish(group.config.failureStatuses.contains(response.status.code) ? .failure : .success)
                return .success(response)
            case .failure(let error):
                let cancelled = Task.isCancelled
                switch error.fault {
                case .none: lease.finish(.neutral)
                case .unreachable, .timedOut, .invalid: lease.finish(cancelled ? .neutral : .failure)
                }
                // The message names the group and path, never the target's address (the
                // engine's error texts may hold it).
                let subject = "upstream group '\(group.name)' (\(request.url))"
                let message: String
                switch error.fault {
                case .unreachable: message = "\(subject) could not be reached"
                case .timedOut: message = "\(subject) did not answer within \(timeout)"
                case .invalid: message = "\(subject) answered with an invalid response"
                case .none: message = error.message.replacingOccurrences(of: outgoing.url, with: subject)
                }
                let named = FetchError(message: message, fault: error.fault)
                guard tried.isEmpty, error.fault == .unreachable, ProxyRules.idempotent.contains(request.method), !cancelled else {
                    return .failure(named)
                }
                tried.insert(lease.target)
                firstFailure = named
            }
        }
    }
}
