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

/// Refuses options a built-in does not know, and non-boolean values of its boolean options:
/// a misspelt `hideCredential` or a `"true"` string must be a load error, not a credential
/// silently forwarded.
func checkOptions(_ options: JSONValue, known: [String], booleans: [String] = [], location: ConfigError?, policy: String) throws(ConfigError) {
    guard case .object(let members) = options else {
        if case .null = options { return }
        throw optionError(location, policy: policy, "options must be an object")
    }
    for key in members.keys.sorted() where !known.contains(key) {
        throw optionError(location, policy: policy, "unknown option '\(key)' (\(known.joined(separator: ", ")))")
    }
    for key in booleans {
        if let value = members[key], value.boolValue == nil {
            throw optionError(location, policy: policy, "options.\(key) must be true or false")
        }
    }
}
