import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
import Logging
import NIOCore

/// The gateway's request path: route match, inbound policies, handler, outbound policies.
/// Every error the gateway produces is answered as problem+json with the request id.
/// Independent of the server that carries the request (``GatewayConnection``).
struct GatewayResponder: Sendable {
    let store: SnapshotStore
    let pipeline: RequestPipeline
    let logger: Logger

    /// A request's body as the server hands it on.
    enum Body: Sendable {
        /// The head announced none.
        case none
        /// A small declared body, read whole before the request started.
        case buffered(ByteBuffer)
        /// Still arriving.
        case stream(InboundBody.Producer)
    }

    /// A request as the server received it.
    struct Incoming: Sendable {
        var head: HTTPRequest
        var body: Body
        var clientAddress: String?
        /// The loop of the client connection: its Lua VM serves the request.
        var loop: any EventLoop
        var shutdown: ShutdownState
    }

    /// Runs on the connection's event loop (the request's task prefers that loop's executor),
    /// so the VM calls and the upstream call below need no hop. Returns the final answer with
    /// the request id stamped on it.
    func respond(to request: Incoming) async -> ResponseState {
        let served = store.served
        let snapshot = served.snapshot
        let settings = snapshot.config.settings
        let idHeader = settings.requestIdHeader
        let requestId = request.head.headerFields[idHeader].flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? RequestID.next()

        let target = request.head.path ?? "/"
        let queryStart = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let rawPath = queryStart.map { target[..<$0] } ?? target[...]
        let query = queryStart.map { String(target[target.index(after: $0)...]) }

        func problem(_ p: Problem) -> ResponseState {
            Self.stamped(.problem(p, path: String(rawPath), requestId: requestId), requestId: requestId, idHeader: idHeader)
        }

        let segments: [String]
        do {
            segments = try PathCoding.segments(of: rawPath, allowEncodedSlashes: settings.allowEncodedSlashes)
        } catch {
            return problem(Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: error.detail))
        }

        let method = request.head.method
        let origin = request.head.headerFields[.origin]
        // A CORS preflight for a route with a CORS policy is the gateway's to answer: no
        // policy or upstream sees it.
        if method == .options, let origin, let asked = request.head.headerFields[.accessControlRequestMethod],
           let askedMethod = HTTPRequest.Method(asked),
           case .found(_, let route, _) = snapshot.routes.match(method: askedMethod, segments: segments), let cors = route.cors {
            guard let fields = cors.preflight(origin: origin, method: asked, requestHeaders: request.head.headerFields[.accessControlRequestHeaders]) else {
                return problem(Problem(
                    status: .forbidden, type: Problem.Kind.forbidden,
                    detail: "The CORS policy of this route does not allow this origin, method or these headers."))
            }
            return Self.stamped(ResponseState(status: .noContent, headers: fields, body: .empty), requestId: requestId, idHeader: idHeader)
        }
        switch snapshot.routes.match(method: method, segments: segments) {
        case .notFound:
            return problem(Problem(status: .notFound, type: Problem.Kind.routeNotFound, detail: "No route matches \(method.rawValue) \(rawPath)."))
        case .methodNotAllowed(let allowed):
            var headers = HTTPFields()
            headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return problem(Problem(
                status: .methodNotAllowed, type: Problem.Kind.methodNotAllowed,
                detail: "\(rawPath) does not accept \(method.rawValue).", headers: headers))
        case .found(let index, let route, let params):
            var headers = request.head.headerFields
            headers[idHeader] = requestId
            let length = headers[.contentLength].flatMap { Int($0) }
            let limit = settings.maxRequestBodyBytes
            if let length, length > limit {
                let refusal = problem(Problem(
                    status: .contentTooLarge, type: Problem.Kind.payloadTooLarge,
                    detail: "The request body exceeds the limit of \(limit) bytes."))
                route.cors?.apply(origin: origin, to: &refusal.headers)
                return refusal
            }
            let body: MessageBody
            switch request.body {
            case .stream(let chunks) where length != 0:
                body = .stream(StreamedBody(chunks: LimitedBody(chunks, limit: limit), length: length))
            case .buffered(let buffer) where buffer.readableBytes > settings.maxBufferedBodyBytes:
                // Over what a policy may read (the limit can shrink on a reload): offered as a
                // stream, so a policy that reads it meets the limit as with any stream.
                let chunks = AsyncThrowingStream<ByteBuffer, any Error> { $0.yield(buffer); $0.finish() }
                body = .stream(StreamedBody(chunks: chunks, length: buffer.readableBytes))
            case .buffered(let buffer) where buffer.readableBytes > 0:
                body = .buffered(buffer)
            default:
                body = .empty
            }
            // Routed and forwarded alike: the normalised path, never the raw one.
            let path = PathCoding.canonicalPath(of: rawPath, segments: segments)
            let state = RequestState(
                requestId: requestId, method: method, path: path, query: query, headers: headers,
                body: body, scheme: "http", authority: request.head.authority, clientAddress: request.clientAddress,
                params: params, route: route)
            state.pathSegments = segments
            let runtime = snapshot.runtime(for: request.loop)
            let result = await pipeline.handle(state, route: index, snapshot: snapshot, groups: served.groups, runtime: runtime)
            await runtime.finish(state)
            if Task.isCancelled && request.shutdown.isForcing {
                // Shutdown's grace period ran out while this request was in flight.
                logger.warning("request cut short by shutdown", metadata: ["request-id": .string(requestId), "route": .string(state.route.label)])
            }
            route.cors?.apply(origin: origin, to: &result.headers)
            return Self.stamped(result, requestId: requestId, idHeader: idHeader)
        }
    }

    /// The final response with the request id stamped and its framing made explicit:
    /// `Content-Length` for a body in memory (and 0 for none), the upstream's for a stream.
    static func stamped(_ state: ResponseState, requestId: String, idHeader: HTTPField.Name) -> ResponseState {
        var headers = state.headers
        headers[idHeader] = requestId
        switch state.body {
        case .empty:
            if state.status.code >= 200 && state.status != .noContent && state.status != .notModified && headers[.contentLength] == nil {
                headers[.contentLength] = "0"
            }
        case .buffered(let buffer):
            headers[.contentLength] = String(buffer.readableBytes)
        case .stream:
            break
        }
        return ResponseState(status: state.status, headers: headers, body: state.body)
    }
}
