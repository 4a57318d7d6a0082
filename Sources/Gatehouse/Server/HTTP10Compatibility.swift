import NIOCore
import NIOHTTP1

/// HTTP/1.0 on a server that otherwise speaks 1.1. The request's version is lost in the
/// conversion to HTTPTypes, so this handler, in front of it, keeps what it implies:
/// - a 1.0 request without `Connection: keep-alive` gets `Connection: close` added, so the
///   connection closes after its answer (1.0's default);
/// - the answer to a 1.0 request says `HTTP/1.0` (never chunked: NIO's encoder then frames an
///   unsized body by the close, and the connection is closed after it), and `Connection:
///   keep-alive` when the connection stays open.
final class HTTP10Compatibility: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// For each request whose answer has not started: (HTTP/1.0, keep-alive asked).
    private var requests = CircularBuffer<(old: Bool, keepAlive: Bool)>()
    /// The answer being written must end with a close.
    private var closeAfterEnd = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let old = head.version.major == 1 && head.version.minor == 0
        let keepAlive = head.isKeepAlive
        requests.append((old, keepAlive))
        if old && !keepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.fireChannelRead(wrapInboundOut(.head(head)))
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            guard let request = requests.popFirst(), request.old else { return context.write(data, promise: promise) }
            head.version = .http1_0
            let sized = head.headers.contains(name: "content-length")
            let closes = !request.keepAlive || !sized || head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
            closeAfterEnd = closes
            head.headers.remove(name: "transfer-encoding")
            head.headers.replaceOrAdd(name: "connection", value: closes ? "close" : "keep-alive")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterEnd:
            closeAfterEnd = false
            let channel = context.channel
            context.writeAndFlush(data).whenComplete { result in
                promise?.completeWith(result)
                channel.close(promise: nil)
            }
        default:
            context.write(data, promise: promise)
        }
    }
}
