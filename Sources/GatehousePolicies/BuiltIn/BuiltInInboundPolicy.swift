public import GatehouseCore

/// An inbound policy implemented in Swift (authentication). It either lets the request go on
/// (returning nil, possibly after setting `request.user`) or returns the problem to answer.
/// Built-in policies always fail closed.
public protocol BuiltInInboundPolicy: Sendable {
    var name: String { get }
    func authenticate(_ state: RequestState) async -> Problem?
}

extension APIKeyInbound: BuiltInInboundPolicy {}

/// The error for a bad option of built-in policy `policy`: at the policy's place in
/// policies.json (file and line) when known.
func optionError(_ location: ConfigError?, policy: String, _ message: String) -> ConfigError {
    var error = location ?? ConfigError(file: GatewayConfig.policiesFile, message: "")
    error.message = "policy '\(policy)': \(message)"
    return error
}
