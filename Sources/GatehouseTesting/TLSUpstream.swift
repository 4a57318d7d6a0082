import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An `https` upstream on 127.0.0.1 (swift-nio-ssl), answering every request `200 ok` on
/// keep-alive connections, counting connections and requests.
public final class TLSUpstream: Sendable {
    public let port: Int
    private let channel: any Channel
    private let counts: NIOLockedValueBox<(connections: Int, requests: Int)>

    public init(certificates: TestCertificates) async throws {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificates.certificateFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificates.keyFile, format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let counts = NIOLockedValueBox((connections: 0, requests: 0))
        self.counts = counts
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counts.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(NIOSSLServerHandler(context: context))
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(OKHandler(counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    public var connections: Int { counts.withLockedValue { $0.connections } }
    public var requests: Int { counts.withLockedValue { $0.requests } }

    public func stop() async {
        try? await channel.close()
    }
}

private final class OKHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let counts: NIOLockedValueBox<(connections: Int, requests: Int)>

    init(counts: NIOLockedValueBox<(connections: Int, requests: Int)>) { self.counts = counts }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        counts.withLockedValue { $0.requests += 1 }
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "2")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
