public import GatehouseCore

/// An inbound policy implemented in Swift (authentication). It either lets the request go on
/// (returning nil, possibly after setting `request.user`) or returns the problem to answer.
/// Built-in policies always fail closed.
public protocol BuiltInInboundPolicy: Sendable {
    var name: String { get }
    func authenticate(_ state: RequestState) async -> Problem?
}

extension APIKeyInbound: BuiltInInboundPolicy {}
