import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// The gateway's request path: route match, inbound policies, handler, outbound policies.
/// Every error the gateway produces is answered as problem+json with the request id.
public struct GatewayResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext

    let store: SnapshotStore
    let pipeline: RequestPipeline
    let logger: Logger

    /// Runs on the connection's event loop: `LoopPinnedChannel` gives each connection's task
    /// that loop's executor, so the VM calls and the upstream call below need no hop.
    public func respond(to request: Request, context: GatewayRequestContext) async throws -> Response {
        await handleRequest(request, context: context)
    }

    private func handleRequest(_ request: Request, context: GatewayRequestContext) async -> Response {
        let snapshot = store.current
        let settings = snapshot.config.settings
        let idHeader = settings.requestIdHeader
        let requestId = request.headers[idHeader].flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? RequestID.next()

        let target = request.head.path ?? "/"
        let queryStart = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let rawPath = queryStart.map { target[..<$0] } ?? target[...]
        let query = queryStart.map { String(target[target.index(after: $0)...]) }

        func problem(_ p: Problem) -> Response {
            Self.response(.problem(p, path: String(rawPath), requestId: requestId), requestId: requestId, idHeader: idHeader)
        }

        let segments: [String]
        do {
            segments = try PathCoding.segments(of: rawPath, allowEncodedSlashes: settings.allowEncodedSlashes)
        } catch {
            return problem(Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: error.detail))
        }

        switch snapshot.routes.match(method: request.method, segments: segments) {
        case .notFound:
            return problem(Problem(status: .notFound, type: Problem.Kind.routeNotFound, detail: "No route matches \(request.method.rawValue) \(rawPath)."))
        case .methodNotAllowed(let allowed):
            var headers = HTTPFields()
            headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return problem(Problem(
                status: .methodNotAllowed, type: Problem.Kind.methodNotAllowed,
                detail: "\(rawPath) does not accept \(request.method.rawValue).", headers: headers))
        case .found(let index, let route, let params):
            var headers = request.headers
            headers[idHeader] = requestId
            let length = request.headers[.contentLength].flatMap { Int($0) }
            let limit = settings.maxRequestBodyBytes
            if let length, length > limit {
                return problem(Problem(
                    status: .contentTooLarge, type: Problem.Kind.payloadTooLarge,
                    detail: "The request body exceeds the limit of \(limit) bytes."))
            }
            let body: MessageBody = length == 0 || (length == nil && request.headers[.transferEncoding] == nil)
                ? .empty : .stream(StreamedBody(chunks: LimitedBody(request.body, limit: limit), length: length))
            // Routed and forwarded alike: the normalised path, never the raw one.
            let path = PathCoding.canonicalPath(of: rawPath, segments: segments)
            let state = RequestState(
                requestId: requestId, method: request.method, path: path, query: query, headers: headers,
                body: body, scheme: "http", authority: request.head.authority, clientAddress: context.clientAddress,
                params: params, route: route)
            state.pathSegments = segments
            let runtime = snapshot.runtime(for: context.eventLoop)
            let result = await pipeline.handle(state, route: index, snapshot: snapshot, runtime: runtime)
            await runtime.finish(state)
            if Task.isCancelled {
                // Shutdown's grace period ran out while this request was in flight.
                logger.warning("request cut short by shutdown", metadata: ["request-id": .string(requestId), "route": .string(state.route.label)])
            }
            return Self.response(result, requestId: requestId, idHeader: idHeader)
        }
    }

    /// Converts the final response for Hummingbird, stamping the request id.
    static func response(_ state: ResponseState, requestId: String, idHeader: HTTPField.Name) -> Response {
        var headers = state.headers
        headers[idHeader] = requestId
        switch state.body {
        case .empty:
            if state.status.code >= 200 && state.status != .noContent && state.status != .notModified && headers[.contentLength] == nil {
                headers[.contentLength] = "0"
            }
            return Response(status: state.status, headers: headers, body: ResponseBody())
        case .buffered(let buffer):
            headers[.contentLength] = String(buffer.readableBytes)
            return Response(status: state.status, headers: headers, body: ResponseBody(byteBuffer: buffer))
        case .stream(let stream):
            return Response(status: state.status, headers: headers, body: ResponseBody(asyncSequence: stream.chunks))
        }
    }
}
