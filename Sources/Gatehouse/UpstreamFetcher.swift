import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes

/// `http.fetch` on the gateway's upstream engine, sharing its pools with forwarding. The whole
/// call — connect, head and body — is bounded by the call's timeout, so a policy never hangs
/// on a slow service. A fetch with `upstream = "name"` goes to a target of that group, with its
/// balancing, breakers and failover.
struct UpstreamFetcher: HTTPFetching {
    let client: UpstreamClient
    let groups: UpstreamGroups

    func fetch(_ request: FetchRequest, maxBodyBytes: Int) async -> Result<ResponseState, FetchFailure> {
        let outgoing = UpstreamClient.Request(
            url: request.url, method: request.method, headers: request.headers,
            body: request.body.map { .text($0) } ?? .empty)
        let timeout = request.timeout
        let client = self.client
        let group: UpstreamGroup?
        if let name = request.upstream {
            guard let found = groups.group(named: name) else { return .failure(FetchFailure("there is no upstream group '\(name)'")) }
            group = found
        } else {
            group = nil
        }
        // The engine bounds waiting for the answer and each read; this bounds the whole, a
        // connect to a black hole included. For a group the engine's own deadlines (connect
        // and response, each within the call's timeout) come first, so a target that does not
        // answer is a failure for its breaker; this bound is the backstop.
        let outcome = await withTimeout(group == nil ? timeout : timeout + .milliseconds(250)) {
            if let group {
                await client.fetch(group: group, outgoing, timeout: timeout, maxBodyBytes: maxBodyBytes)
            } else {
                await client.fetch(outgoing, timeout: timeout, maxBodyBytes: maxBodyBytes)
            }
        }
        switch outcome {
        case .success(let response)?:
            return .success(ResponseState(status: response.status, headers: response.headers, body: response.body))
        case .failure(let error)?:
            return .failure(FetchFailure(error.message))
        case nil:
            return .failure(FetchFailure("\(request.upstream.map { "upstream group '\($0)' (\(request.url))" } ?? request.url) did not answer within \(timeout)"))
        }
    }
}

/// The Lua `upstreams` table's view of the groups installed last.
struct GroupDirectory: UpstreamDirectory {
    let groups: UpstreamGroups

    var groupNames: [String] { groups.current.ordered.map(\.name) }

    func state(of group: String) -> JSONValue? { groups.current[group]?.describe() }
}
