public import AsyncHTTPClient
public import GatehouseCore
public import HTTPTypes
public import Logging
public import NIOCore
import NIOHTTP1

/// Something that sends a request upstream: the real client, or a stub in `gatehouse test`.
public protocol UpstreamForwarding: Sendable {
    func send(_ request: UpstreamClient.Request, logger: Logger) async throws(Problem) -> UpstreamClient.Response
}

/// Forwards requests to upstreams over a pooled keep-alive AsyncHTTPClient, streaming bodies
/// both ways, and maps failures to problems that name no internal address.
///
/// The read timeout bounds the wait for the response head after the request was sent, and,
/// while a body streams, the silence between two reads.
public final class UpstreamClient: UpstreamForwarding {
    public let client: HTTPClient

    /// - Parameters:
    ///   - connectTimeout: to establish a connection to an upstream.
    ///   - responseTimeout: from sending the request until the response head arrives; while a
    ///     body streams, the same value bounds the silence between two reads.
    public init(eventLoopGroup: any EventLoopGroup, connectTimeout: TimeAmount, responseTimeout: TimeAmount) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, // a gateway passes redirects through to the client
            timeout: .init(connect: connectTimeout, read: responseTimeout),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        // A refused connection is an answer: report it now (502 / `nil, err`) instead of
        // retrying until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        // The gateway does not export traces; without this the client builds a (no-op) span,
        // named by string interpolation, for every request.
        configuration.tracing.tracer = nil
        self.client = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
    }

    public func shutdown() async throws {
        try await client.shutdown()
    }

    /// What to send upstream.
    public struct Request: Sendable {
        public var url: String
        public var method: HTTPRequest.Method
        public var headers: HTTPFields
        public var body: MessageBody

        public init(url: String, method: HTTPRequest.Method, headers: HTTPFields, body: MessageBody) {
            self.url = url
            self.method = method
            self.headers = headers
            self.body = body
        }
    }

    /// The upstream's answer; the body is still streaming.
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

    /// Responses with a declared length up to this size are handed on whole (one write to the
    /// client); longer or unsized ones stream.
    static let wholeBodyLimit = 64 * 1024

    /// Sends `request`; hop-by-hop headers are removed both ways.
    ///
    /// The upstream connection is taken from the pool of the calling event loop (the client
    /// connection's loop when called from the gateway), so the request and its response never
    /// change threads.
    public func send(_ request: Request, logger: Logger) async throws(Problem) -> Response {
        let loop = client.eventLoopGroup.any()
        var fields = request.headers
        HopByHop.strip(&fields)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 2)
        for field in fields { headers.add(name: field.name.rawName, value: field.value) }
        let body: HTTPClient.Body?
        var pump: RequestBodyPump?
        switch request.body {
        case .empty:
            headers.remove(name: "content-length")
            if request.method == .post || request.method == .put || request.method == .patch {
                headers.add(name: "content-length", value: "0")
            }
            body = nil
        case .buffered(let buffer):
            headers.replaceOrAdd(name: "content-length", value: String(buffer.readableBytes))
            body = .byteBuffer(buffer)
        case .stream(let stream):
            let streaming = RequestBodyPump(stream)
            body = streaming.requestBody(on: loop)
            pump = streaming
        }
        let exchange = UpstreamExchange(loop: loop, method: request.method, wholeBodyLimit: Self.wholeBodyLimit, pump: pump)
        do {
            let outgoing = try HTTPClient.Request(
                url: request.url, method: HTTPMethod(rawValue: request.method.rawValue), headers: headers, body: body)
            // The client's own messages are debug and trace only; giving it our logger costs a
            // metadata copy per request (it tags the logger with its request id), so it gets
            // one only when those levels are on. Failures are logged below either way.
            let clientLogger = logger.logLevel <= .debug ? logger : nil
            let task = client.execute(
                request: outgoing, delegate: exchange, eventLoop: .delegate(on: loop), logger: clientLogger)
            return try await withTaskCancellationHandler {
                try await exchange.head.futureResult.get()
            } onCancel: {
                task.cancel()
            }
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
        if let invalid = error as? InvalidUpstreamResponse {
            logger.warning("upstream answered with invalid HTTP", metadata: ["upstream": .string(url), "error": .string(invalid.detail)])
            return Problem(status: .badGateway, type: Problem.Kind.upstreamInvalidResponse, detail: "The upstream service answered with an invalid response.")
        }
        let timeout: Bool
        if let clientError = error as? HTTPClientError {
            timeout = [.connectTimeout, .readTimeout, .deadlineExceeded, .getConnectionFromPoolTimeout].contains(clientError)
        } else {
            timeout = "\(error)".lowercased().contains("timeout") || "\(error)".lowercased().contains("timed out")
        }
        logger.warning("upstream request failed", metadata: ["upstream": .string(url), "error": .string("\(error)")])
        if timeout {
            return Problem(status: .gatewayTimeout, type: Problem.Kind.upstreamTimeout, detail: "The upstream service did not answer in time.")
        }
        return Problem(status: .badGateway, type: Problem.Kind.upstreamUnavailable, detail: "The upstream service could not be reached.")
    }
}
