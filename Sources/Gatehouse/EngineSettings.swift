import GatehouseCore
import GatehouseUpstreams
import NIOCore

extension EngineConfiguration {
    /// The engine's settings from `gatehouse.json`. Read when the gateway starts: a reload
    /// keeps the engine (and its pooled connections) as they are.
    init(_ settings: GatewaySettings) {
        self.init()
        connectTimeout = .milliseconds(Int64(settings.connectTimeoutMilliseconds))
        responseTimeout = .milliseconds(Int64(settings.upstreamTimeoutMilliseconds))
        idleTimeout = .seconds(Int64(settings.upstreamIdleTimeoutSeconds))
        maxConnectionsPerOrigin = settings.upstreamConnectionsPerLoop
        tls = UpstreamTLS(caFile: settings.upstreamCaFile, verify: settings.upstreamTlsVerify)
    }
}
