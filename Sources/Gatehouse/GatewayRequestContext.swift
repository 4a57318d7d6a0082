public import Hummingbird
public import NIOCore

/// Per-request context: which event loop the connection lives on (its Lua VM is chosen by it)
/// and who the client is.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let eventLoop: any EventLoop
    public let clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.eventLoop = source.channel.eventLoop
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }
}
