import Foundation
import GatehouseCore
import GatehousePolicies
import GatehouseUpstreams
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore

/// The admin listener: a separate port, loopback by default, off unless configured.
///
/// - `GET /status`: generation, load time, reload count, last reload error (file and line).
/// - `GET /plugins`: each plugin file's name, version, directory and SHA-256.
/// - `GET /upstreams`: every upstream group with its targets' breaker, health and load.
/// - `POST /reload`: reload now; 200 with the new generation or 422 with the errors.
///
/// When `token` is set every call needs `Authorization: Bearer <token>` (compared in constant time).
public enum AdminServer {
    public static func application(
        reloader: Reloader, store: SnapshotStore, host: String, port: Int, token: String?, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: AdminAuthMiddleware(token: token))
        router.get("status") { _, _ -> Response in
            try json(await reloader.status)
        }
        router.get("plugins") { _, _ -> Response in
            try json(store.current.plugins)
        }
        router.get("upstreams") { _, _ -> Response in
            let groups = JSONValue.array(store.served.groups.ordered.map { $0.describe() })
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: groups.serialized())))
        }
        router.post("reload") { _, _ -> Response in
            switch await reloader.reload(reason: "admin endpoint") {
            case .success(let generation):
                return try json(["generation": generation])
            case .failure(let error):
                return try json(["errors": error.lines], status: .unprocessableContent)
            }
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token else { return try await next(request, context) }
        let presented = request.headers[.authorization] ?? ""
        let expected = "Bearer " + token
        var difference = UInt8(presented.utf8.count == expected.utf8.count ? 0 : 1)
        for (a, b) in zip(presented.utf8, expected.utf8) { difference |= a ^ b }
        guard difference == 0 else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer realm=\"gatehouse-admin\""
            return Response(status: .unauthorized, headers: headers)
        }
        return try await next(request, context)
    }
}
