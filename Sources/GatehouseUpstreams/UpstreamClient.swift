public import GatehouseCore
public import HTTPTypes
public import Logging
public import NIOCore
import NIOSSL

/// Something that sends a request upstream: the real client, or a stub in `gatehouse test`.
public protocol UpstreamForwarding: Sendable {
    func send(_ request: UpstreamClient.Request, logger: Logger) async throws(Problem) -> UpstreamClient.Response
}

/// Forwards requests to upstreams over the gateway's own engine (``UpstreamEngine``), and maps
/// failures to problems that name no internal address (the address goes to the log).
public final class UpstreamClient: UpstreamForwarding {
    public let engine: UpstreamEngine

    public init(eventLoopGroup: any EventLoopGroup, configuration: EngineConfiguration = EngineConfiguration()) {
        self.engine = UpstreamEngine(group: eventLoopGroup, configuration: configuration)
    }

    public func shutdown() async {
        await engine.shutdown()
    }

    /// What to send upstream.
    public struct Request: Sendable {
        public var url: String
        public var method: HTTPRequest.Method
        public var headers: HTTPFields
        public var body: MessageBody
        /// Overrides the engine's connect timeout for a connection this request opens.
        public var connectTimeout: TimeAmount?
        /// Overrides the engine's response timeout (head, and silence while the body streams).
        public var responseTimeout: TimeAmount?

        public init(
            url: String, method: HTTPRequest.Method, headers: HTTPFields, body: MessageBody,
            connectTimeout: TimeAmount? = nil, responseTimeout: TimeAmount? = nil
        ) {
            self.url = url
            self.method = method
            self.headers = headers
            self.body = body
            self.connectTimeout = connectTimeout
            self.responseTimeout = responseTimeout
        }
    }

    /// The upstream's answer; the body is still streaming unless it was small.
    public struct Response: Sendable {
        public var status: HTTPResponse.Status
        public var headers: HTTPFields
        public var body: MessageBody

        public init(status: HTTPResponse.Status, headers: HTTPFields, body: MessageBody) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    /// Sends `request`; hop-by-hop headers are removed both ways.
    public func send(_ request: Request, logger: Logger) async throws(Problem) -> Response {
        do {
            return try await engine.execute(request)
        } catch {
            throw Self.problem(for: error, logger: logger, url: request.url)
        }
    }

    /// 504 for timeouts, 502 for everything else; the upstream URL only goes to the log.
    static func problem(for error: any Error, logger: Logger, url: String) -> Problem {
        if let tooLarge = error as? BodyTooLarge {
            // The client's body crossed the limit while it streamed: the upstream request was
            // abandoned before it completed.
            return Problem(status: .contentTooLarge, type: Problem.Kind.payloadTooLarge, detail: "The request body exceeds the limit of \(tooLarge.limit) bytes.")
        }
        if error is RequestBodyIncomplete {
            // The client's upload broke off while it streamed: the upstream request was
            // abandoned (its connection closed), and the fault is the client's.
            return Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: "The request body did not arrive whole.")
        }
        let upstreamError = error as? UpstreamError
        if Task.isCancelled {
            // The caller is gone (its client closed the connection, or shutdown cut it): the
            // exchange was abandoned on purpose and the answer goes nowhere.
            logger.debug("upstream request abandoned", metadata: ["upstream": .string(url)])
            return Problem(status: .badGateway, type: Problem.Kind.upstreamUnavailable, detail: "The request was abandoned.")
        }
        if case .invalidResponse(let detail) = upstreamError {
            logger.warning("upstream answered with invalid HTTP", metadata: ["upstream": .string(url), "error": .string(detail)])
            return Problem(status: .badGateway, type: Problem.Kind.upstreamInvalidResponse, detail: "The upstream service answered with an invalid response.")
        }
        if case .poolExhausted = upstreamError {
            // The gateway's own limit (upstreamConnectionsPerLoop and its queue), not the
            // upstream's fault: a 503 that no breaker counts and nothing retries.
            logger.warning("no upstream connection became free in time", metadata: ["upstream": .string(url)])
            var headers = HTTPFields()
            headers[.retryAfter] = "1"
            return Problem(status: .serviceUnavailable, type: Problem.Kind.upstreamBusy, detail: "The gateway has no free connection to the upstream service.", headers: headers)
        }
        logger.warning("upstream request failed", metadata: ["upstream": .string(url), "error": .string("\(error)")])
        if upstreamError?.isTimeout == true {
            return Problem(status: .gatewayTimeout, type: Problem.Kind.upstreamTimeout, detail: "The upstream service did not answer in time.")
        }
        return Problem(status: .badGateway, type: Problem.Kind.upstreamUnavailable, detail: "The upstream service could not be reached.")
    }
}
