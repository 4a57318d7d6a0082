public import GatehouseCore
import HTTPTypes

/// `request-size-limit-inbound`: a route's own request body limit, below the gateway's
/// `maxRequestBodyBytes`. A declared length over it is refused at once; a body without one
/// (chunked) is counted while it streams and cut off when it crosses the limit, so the
/// upstream never receives it as complete. Either way the client gets a 413 problem.
///
/// Options: `maxSizeInBytes` (required, > 0).
public struct RequestSizeLimitInbound: BuiltInInboundPolicy {
    public let name: String
    let limit: Int

    public init(name: String, options: JSONValue, location: ConfigError? = nil) throws(ConfigError) {
        self.name = name
        try checkOptions(options, known: ["maxSizeInBytes"], location: location, policy: name)
        guard case .int(let limit)? = options["maxSizeInBytes"], limit > 0 else {
            throw optionError(location, policy: name, "options.maxSizeInBytes must be a whole number of bytes greater than 0")
        }
        self.limit = Int(clamping: limit)
    }

    public func authenticate(_ state: RequestState) async -> Problem? {
        switch state.body {
        case .empty:
            return nil
        case .buffered(let buffer):
            return buffer.readableBytes > limit ? tooLarge() : nil
        case .stream(let stream):
            if let length = stream.length, length > limit { return tooLarge() }
            state.body = .stream(stream.limited(to: limit))
            return nil
        }
    }

    private func tooLarge() -> Problem {
        Problem(status: .contentTooLarge, type: Problem.Kind.payloadTooLarge, detail: "The request body exceeds this route's limit of \(limit) bytes.")
    }
}
