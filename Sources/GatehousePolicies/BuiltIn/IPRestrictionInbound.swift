public import GatehouseCore
import HTTPTypes

/// `ip-restriction-inbound`: allow and deny lists of IPv4 and IPv6 networks. The client is
/// the peer, or behind `trustedProxies` the forwarded address (as for `rate-limit-inbound`).
/// A denied address is refused whatever the allow list says; with an allow list, any address
/// not on it is refused. The refusal is a 403 problem that does not echo the address.
///
/// Options: `allow`, `deny` (CIDR lists; at least one of them), `trustedProxies`.
public struct IPRestrictionInbound: BuiltInInboundPolicy {
    public let name: String
    let allow: [CIDR]
    let deny: [CIDR]
    let client: ClientAddress

    public init(name: String, options: JSONValue, location: ConfigError? = nil) throws(ConfigError) {
        self.name = name
        func fail(_ message: String) -> ConfigError { optionError(location, policy: name, message) }
        try checkOptions(options, known: ["allow", "deny", "trustedProxies"], location: location, policy: name)
        func list(_ key: String) throws(ConfigError) -> [CIDR] {
            guard let value = options[key] else { return [] }
            guard case .array(let items) = value else { throw fail("options.\(key) is a list of CIDRs such as 10.0.0.0/8 or 2001:db8::/32") }
            var out: [CIDR] = []
            for item in items {
                guard let text = item.stringValue, let cidr = CIDR(text) else {
                    throw fail("options.\(key) holds CIDRs such as 10.0.0.0/8 or 2001:db8::/32, not \(item)")
                }
                out.append(cidr)
            }
            return out
        }
        allow = try list("allow")
        deny = try list("deny")
        guard !allow.isEmpty || !deny.isEmpty else { throw fail("options needs an allow or a deny list (or both)") }
        client = try ClientAddress(options: options, fail: fail)
    }

    public func authenticate(_ state: RequestState) async -> Problem? {
        // With an allow list, a client behind a trusted proxy that did not say who it is stays
        // out; a deny list judges whatever address is known.
        let address = allow.isEmpty ? client.resolve(state) : client.verified(state)
        let refused = address.map { address in
            deny.contains { $0.contains(address) } || (!allow.isEmpty && !allow.contains { $0.contains(address) })
        } ?? true
        guard refused else { return nil }
        return Problem(status: .forbidden, type: Problem.Kind.forbidden, detail: "Requests from this address are not allowed.")
    }
}
