import AsyncHTTPClient
import GatehouseCore
import GatehousePolicies
import HTTPTypes
import NIOCore
import NIOHTTP1

/// `http.fetch` over the gateway's pooled AsyncHTTPClient. The whole call — connect, head and
/// body — is bounded by the call's timeout, so a policy never hangs on a slow service.
struct UpstreamFetcher: HTTPFetching {
    let client: HTTPClient

    func fetch(_ request: FetchRequest, maxBodyBytes: Int) async -> Result<ResponseState, FetchFailure> {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers { outgoing.headers.add(name: field.name.rawName, value: field.value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(string: body)) }
        let timeout = request.timeout
        let client = self.client
        let prepared = outgoing
        let outcome = await withTimeout(timeout) { () -> Result<ResponseState, FetchFailure> in
            do {
                let response = try await client.execute(prepared, deadline: .now() + .nanoseconds(timeout.nanoseconds))
                // As on the upstream leg: a final status outside 200-599 is not HTTP.
                guard (200...599).contains(Int(response.status.code)) else {
                    return .failure(FetchFailure("\(request.url) answered with an invalid status (\(response.status.code))"))
                }
                let body = try await response.body.collect(upTo: maxBodyBytes)
                var fields = HTTPFields()
                for (name, value) in response.headers {
                    if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
                }
                fields[.transferEncoding] = nil
                fields[.contentLength] = nil
                return .success(ResponseState(
                    status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields,
                    body: body.readableBytes == 0 ? .empty : .buffered(body)))
            } catch is NIOTooManyBytesError {
                return .failure(FetchFailure("the response of \(request.url) exceeds \(maxBodyBytes) bytes"))
            } catch {
                if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
                    return .failure(FetchFailure("\(request.url) did not answer within \(timeout)"))
                }
                return .failure(FetchFailure("\(request.url) failed: \(error)"))
            }
        }
        return outcome ?? .failure(FetchFailure("\(request.url) did not answer within \(timeout)"))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
