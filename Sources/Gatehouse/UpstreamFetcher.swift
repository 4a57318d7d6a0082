import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes

/// `http.fetch` on the gateway's upstream engine, sharing its pools with forwarding. The whole
/// call — connect, head and body — is bounded by the call's timeout, so a policy never hangs
/// on a slow service.
struct UpstreamFetcher: HTTPFetching {
    let client: UpstreamClient

    func fetch(_ request: FetchRequest, maxBodyBytes: Int) async -> Result<ResponseState, FetchFailure> {
        let outgoing = UpstreamClient.Request(
            url: request.url, method: request.method, headers: request.headers,
            body: request.body.map { .text($0) } ?? .empty)
        let timeout = request.timeout
        let client = self.client
        // The engine bounds waiting for the answer and each read; this bounds the whole, a
        // connect to a black hole included.
        let outcome = await withTimeout(timeout) {
            await client.fetch(outgoing, timeout: timeout, maxBodyBytes: maxBodyBytes)
        }
        switch outcome {
        case .success(let response)?:
            return .success(ResponseState(status: response.status, headers: response.headers, body: response.body))
        case .failure(let error)?:
            return .failure(FetchFailure(error.message))
        case nil:
            return .failure(FetchFailure("\(request.url) did not answer within \(timeout)"))
        }
    }
}
