import Foundation
import HTTPTypes
public import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// A small upstream that answers every request with a JSON description of it. The demo starts
/// two (sandbox and production); tests use it as a real upstream that counts its calls.
///
/// The answer carries `count`, the number of requests this upstream has received so far.
/// A path starting `/__status/503` answers 503 (a backend that is down). Test hooks, by request header: `x-echo-status: 503` sets the status, `x-echo-delay-ms: 200`
/// delays the answer, `x-echo-response-headers: {"Name":"value"}` adds response headers,
/// `x-echo-pad-bytes: 200000` adds a `pad` field of that many bytes (a large answer),
/// `x-echo-early: 1` answers at once without reading the request body (as nginx's `return`
/// does; the body is then reported as `"(unread)"`);
/// ``force(status:)`` and ``force(delayMilliseconds:)`` do the same for every request;
/// ``closeGate()`` holds every request until ``openGate()``.
public final class EchoUpstream: Sendable {
    public let name: String
    private let count = NIOLockedValueBox(0)
    private let lastRequest = NIOLockedValueBox<[String: String]>([:])
    private let forced = NIOLockedValueBox<(status: Int?, delayMilliseconds: Int?)>((nil, nil))
    private let connections = NIOLockedValueBox<Set<ObjectIdentifier>>([])
    private let inFlight = NIOLockedValueBox<(now: Int, most: Int)>((0, 0))
    /// While closed, requests wait (after being counted) until ``openGate()``.
    private let gate = NIOLockedValueBox<(closed: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    /// Requests wait until ``openGate()``: a test then knows they overlap without timing them.
    public func closeGate() { gate.withLockedValue { $0.closed = true } }

    /// Lets waiting and later requests through.
    public func openGate() {
        let waiting = gate.withLockedValue { g in
            defer { g = (false, []) }
            return g.waiting
        }
        for w in waiting { w.resume() }
    }

    /// Requests being answered right now.
    public var inFlightNow: Int { inFlight.withLockedValue { $0.now } }

    /// Answer every request with this status (nil: 200 or the request's x-echo-status).
    public func force(status: Int?) { forced.withLockedValue { $0.status = status } }
    /// Delay every answer (nil: none, or the request's x-echo-delay-ms).
    public func force(delayMilliseconds: Int?) { forced.withLockedValue { $0.delayMilliseconds = delayMilliseconds } }

    public init(name: String) { self.name = name }

    /// Requests answered so far.
    public var requestCount: Int { count.withLockedValue { $0 } }
    /// The most requests this upstream was answering at the same time (parallelism, observed
    /// without timing anything).
    public var mostInFlight: Int { inFlight.withLockedValue { $0.most } }
    /// Distinct connections requests arrived on (how well a client reuses keep-alive connections).
    public var connectionCount: Int { connections.withLockedValue { $0.count } }
    /// Headers of the last request received (lowercased names).
    public var lastHeaders: [String: String] { lastRequest.withLockedValue { $0 } }

    public func application(host: String = "127.0.0.1", port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let responder = CallbackResponder<EchoRequestContext> { [self] request, context in
            _ = connections.withLockedValue { $0.insert(context.connection) }
            return try await self.answer(request)
        }
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
    }

    private func answer(_ request: Request) async throws -> Response {
        var request = request
        let early = request.headers[HTTPField.Name("x-echo-early")!] == "1"
        let body = early ? ByteBuffer(string: "(unread)") : try await request.collectBody(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers {
            let key = field.name.canonicalName
            headers[key] = headers[key].map { $0 + ", " + field.value } ?? field.value
        }
        if let host = request.head.authority { headers["host"] = host }
        let number = count.withLockedValue { $0 += 1; return $0 }
        lastRequest.withLockedValue { $0 = headers }
        let forced = self.forced.withLockedValue { $0 }
        inFlight.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { inFlight.withLockedValue { $0.now -= 1 } }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = gate.withLockedValue { g in
                if g.closed { g.waiting.append(c) }
                return g.closed
            }
            if !wait { c.resume() }
        }
        if let delay = forced.delayMilliseconds ?? headers["x-echo-delay-ms"].flatMap(Int.init) {
            try await Task.sleep(for: .milliseconds(delay))
        }
        var description: [String: Any] = [
            "upstream": name,
            "count": number,
            "method": request.method.rawValue,
            "path": request.head.path ?? "/",
            "headers": headers,
            "body": String(buffer: body),
        ]
        if let pad = headers["x-echo-pad-bytes"].flatMap(Int.init), pad > 0, pad <= 1 << 24 {
            description["pad"] = String(repeating: "p", count: pad)
        }
        let json = try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys])
        var responseHeaders = HTTPFields()
        responseHeaders[.contentType] = "application/json"
        if let extra = headers["x-echo-response-headers"],
           let object = try? JSONSerialization.jsonObject(with: Data(extra.utf8)) as? [String: String] {
            for (name, value) in object {
                if let field = HTTPField.Name(name) { responseHeaders.append(HTTPField(name: field, value: value)) }
            }
        }
        // A path starting /__status/<code> answers that status: a backend that is down.
        let pathParts = (request.head.path ?? "/").split(separator: "/")
        let pathStatus = pathParts.count >= 2 && pathParts[0] == "__status" ? Int(pathParts[1]) : nil
        let status = forced.status ?? pathStatus ?? headers["x-echo-status"].flatMap(Int.init) ?? 200
        return Response(status: .init(code: status), headers: responseHeaders, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
    }
}

/// Hummingbird's basic context plus the connection a request arrived on.
struct EchoRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let connection: ObjectIdentifier

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.connection = ObjectIdentifier(source.channel)
    }
}
