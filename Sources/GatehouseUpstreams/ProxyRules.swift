public import GatehouseCore
public import HTTPTypes
public import Logging

/// Who asked, as the proxy headers tell the upstream.
public struct ClientInfo: Sendable {
    /// The client's address (appended to `X-Forwarded-For`).
    public var address: String?
    /// `http` or `https`, as the client reached the gateway (`X-Forwarded-Proto`).
    public var scheme: String
    /// The `Host` the client asked for (`X-Forwarded-Host`, and `Host` with `preserveHost`).
    public var authority: String?

    public init(address: String?, scheme: String, authority: String?) {
        self.address = address
        self.scheme = scheme
        self.authority = authority
    }
}

/// The rules every forwarded request follows, whoever sends it (the engine, or the stub
/// upstream of `gatehouse test`): proxy headers, small bodies read first, one retry when that
/// is safe.
extension UpstreamForwarding {
    /// Forwards a request with `X-Forwarded-For/Proto/Host` set (and `Host` kept with
    /// `preserveHost`). Returns the answer and the body as sent (read into memory when it was
    /// small), which the caller keeps in place of the original stream.
    public func forward(
        url: String, method: HTTPRequest.Method, headers: HTTPFields, body: MessageBody, client: ClientInfo,
        preserveHost: Bool, requestId: String, logger: Logger
    ) async throws(Problem) -> (response: UpstreamClient.Response, sentBody: MessageBody) {
        let headers = ProxyRules.proxyHeaders(headers, client: client, preserveHost: preserveHost)
        let body = try await ProxyRules.bufferedIfSmall(body)
        let outgoing = UpstreamClient.Request(url: url, method: method, headers: headers, body: body)
        do {
            return (try await send(outgoing, logger: logger), body)
        } catch {
            guard ProxyRules.mayRetry(method: method, body: body, after: error) else { throw error }
            logger.info("retrying an idempotent request once after an upstream failure", metadata: ["request-id": .string(requestId)])
            return (try await send(outgoing, logger: logger), body)
        }
    }
}

/// The constants and checks of ``UpstreamForwarding/forward(url:method:headers:body:client:preserveHost:requestId:logger:)``.
public enum ProxyRules {
    /// Bodies declared at up to this size are read before the upstream request starts, as
    /// nginx does by default (`proxy_request_buffering`): the upstream gets head and body in
    /// one write, nothing of the client's pace reaches it, and such a request can be retried.
    /// Larger and chunked bodies stream.
    public static let requestBufferLimit = 64 * 1024

    static func bufferedIfSmall(_ body: MessageBody) async throws(Problem) -> MessageBody {
        guard case .stream(let stream) = body, let length = stream.length, length <= requestBufferLimit else { return body }
        do {
            return .buffered(try await stream.collect(limit: length))
        } catch let error as BodyTooLarge {
            throw Problem(status: .contentTooLarge, type: Problem.Kind.payloadTooLarge, detail: "The request body exceeds the limit of \(error.limit) bytes.")
        } catch {
            throw Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: "The request body could not be read.")
        }
    }

    static let idempotent: Set<HTTPRequest.Method> = [.get, .head, .options, .put, .delete, .trace]

    /// `X-Forwarded-For/Proto/Host` set, and `Host` kept with `preserveHost`.
    static func proxyHeaders(_ headers: HTTPFields, client: ClientInfo, preserveHost: Bool) -> HTTPFields {
        var headers = headers
        if let address = client.address {
            let prior = headers[values: .xForwardedFor].joined(separator: ", ")
            headers[.xForwardedFor] = prior.isEmpty ? address : prior + ", " + address
        }
        headers[.xForwardedProto] = client.scheme
        if let authority = client.authority {
            headers[.xForwardedHost] = authority
            if preserveHost && headers[.host] == nil { headers[.host] = authority }
        }
        return headers
    }

    /// Nothing has reached the client yet: a retry is safe for an idempotent method, a body
    /// that can be sent again, and a failure before the upstream answered (not a timeout, where
    /// the upstream may have acted on the request), unless the caller is gone.
    static func mayRetry(method: HTTPRequest.Method, body: MessageBody, after error: Problem) -> Bool {
        idempotent.contains(method) && replayable(body) && error.type == Problem.Kind.upstreamUnavailable && !Task.isCancelled
    }

    /// Whether a failed exchange says something about the upstream (and not about the
    /// client, whose body was too large or broke off).
    static func upstreamFault(_ error: Problem) -> Bool {
        error.type == Problem.Kind.upstreamUnavailable || error.type == Problem.Kind.upstreamTimeout
            || error.type == Problem.Kind.upstreamInvalidResponse
    }

    static func replayable(_ body: MessageBody) -> Bool {
        if case .stream = body { return false }
        return true
    }
}

extension HTTPField.Name {
    public static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    public static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    public static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    public static let host = HTTPField.Name("Host")!
}
