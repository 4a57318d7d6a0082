public import NIOCore

/// How the upstream engine connects, waits and pools. Read once when the gateway starts.
public struct EngineConfiguration: Sendable {
    /// To establish a TCP connection (and the TLS handshake, for `https`).
    public var connectTimeout: TimeAmount = .seconds(5)
    /// From the request's last byte sent until the response head arrives; while a response
    /// body streams, the longest silence between two reads.
    public var responseTimeout: TimeAmount = .seconds(30)
    /// A pooled connection unused this long is closed. Below the usual upstream keep-alive
    /// timeouts (nginx: 75 s), so the gateway closes first and rarely sends on a connection the
    /// upstream is closing.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// Connections per origin on each event loop; requests beyond wait for one to be free.
    public var maxConnectionsPerOrigin: Int = 256
    /// Requests waiting for a connection per origin on each event loop; more are refused (502).
    public var maxWaitingPerOrigin: Int = 4_096
    /// Responses with a declared length up to this size are read whole before they are handed
    /// on (one write to the client); longer or unsized ones stream.
    public var wholeBodyLimit: Int = 64 * 1024
    /// TLS for `https` upstreams.
    public var tls = UpstreamTLS()

    public init() {}
}

/// TLS settings for `https` upstreams: verification is on unless turned off, against the
/// system's trust store or a CA bundle.
public struct UpstreamTLS: Sendable {
    /// A PEM file of the CA certificates to trust instead of the system's (a private CA).
    public var caFile: String?
    /// Check the upstream's certificate chain and name. Off only for development.
    public var verify: Bool = true

    public init(caFile: String? = nil, verify: Bool = true) {
        self.caFile = caFile
        self.verify = verify
    }
}
