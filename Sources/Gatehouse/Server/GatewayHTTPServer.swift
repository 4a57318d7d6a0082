import GatehouseCore
import GatehouseUpstreams
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOPosix
import ServiceLifecycle

/// The gateway's HTTP/1.1 server, as a `Service`: binds, serves every connection with NIO's
/// HTTP/1 codec, `ConnectionGuard` and a ``GatewayConnection``, and shuts down gracefully.
///
/// On graceful shutdown it stops accepting, lets every connection finish its current answer
/// (idle ones close at once), and returns when all are closed. When the service is cancelled
/// (the grace period ran out), it closes every connection still open; the requests on them are
/// cancelled and logged as cut short.
final class GatewayHTTPServer: Service {
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let responder: GatewayResponder
    private let settings: GatewaySettings
    private let logger: Logger
    private let onRunning: @Sendable (Int) async -> Void
    private let executors: EventLoopExecutors
    private let counter = ConnectionCounter()
    private let shutdown = ShutdownState()
    private let inFlight = RequestsInFlight()
    private let connections = OpenChannels()

    init(
        host: String, port: Int, group: any EventLoopGroup, responder: GatewayResponder, settings: GatewaySettings,
        logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void
    ) {
        self.host = host
        self.port = port
        self.group = group
        self.responder = responder
        self.settings = settings
        self.logger = logger
        self.onRunning = onRunning
        self.executors = EventLoopExecutors(group: group)
    }

    func run() async throws {
        let quiesce = ServerQuiescingHelper(group: group)
        let settings = self.settings
        let responder = self.responder
        let executors = self.executors
        let counter = self.counter
        let shutdown = self.shutdown
        let inFlight = self.inFlight
        let connections = self.connections
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // A half-close by the client must reach ConnectionGuard (a body still expected
            // then never comes).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var limits = NIOHTTPDecoderLimitConfiguration()
                    limits.maxHeaderFieldSize = settings.maxHeaderBytes
                    limits.maxHeaderListSize = settings.maxHeaderBytes
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, // GatewayConnection queues pipelined requests itself
                        withErrorHandling: false, // ConnectionGuard answers parser errors as problems
                        withOutboundHeaderValidation: false, // HTTPTypes validated the fields already
                        withEncoderConfiguration: .init(),
                        withDecoderLimitConfiguration: limits)
                    try pipeline.addHandler(HTTP10Compatibility())
                    try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                    try pipeline.addHandler(ConnectionGuard(
                        requestTimeout: .seconds(Int64(settings.requestTimeoutSeconds)), maxConnections: settings.maxConnections,
                        maxRequestLineBytes: settings.maxRequestLineBytes, maxRequestBodyBytes: settings.maxRequestBodyBytes,
                        requestIdHeader: settings.requestIdHeader, counter: counter))
                    try pipeline.addHandler(GatewayConnection(
                        responder: responder, executor: executors.executor(for: channel.eventLoop), shutdown: shutdown, inFlight: inFlight,
                        idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds)),
                        // Never above the body limits: such a body is refused (413) unread, or
                        // offered to policies as a stream with its limit.
                        eagerBodyLimit: min(ProxyRules.requestBufferLimit, settings.maxRequestBodyBytes, settings.maxBufferedBodyBytes)))
                    connections.add(channel)
                }
            }
            .bind(host: host, port: port).get()
        await onRunning(server.localAddress?.port ?? port)
        // Serve until a graceful shutdown begins (or this service is cancelled).
        try? await gracefulShutdown()
        let closed = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: closed)
        await withTaskCancellationHandler {
            try? await closed.futureResult.get()
        } onCancel: {
            shutdown.force()
            connections.closeAll()
        }
        // Requests cut by the close are cancelled; they end promptly.
        await inFlight.drained()
    }
}
