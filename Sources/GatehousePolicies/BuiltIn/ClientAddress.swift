import Foundation
import GatehouseCore
import HTTPTypes

/// Who the client is, for policies that key or filter on its address (`rate-limit-inbound`,
/// `ip-restriction-inbound`): the peer's address, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
struct ClientAddress: Sendable {
    let trusted: [CIDR]

    /// Reads `options.trustedProxies` (a list of CIDRs); `fail` builds the error for a bad one.
    init(options: JSONValue, fail: (String) -> ConfigError) throws(ConfigError) {
        var trusted: [CIDR] = []
        if let list = options["trustedProxies"] {
            guard case .array(let items) = list else { throw fail("trustedProxies is a list of CIDRs such as 10.0.0.0/8 or ::1/128") }
            for item in items {
                guard let text = item.stringValue, let cidr = CIDR(text) else { throw fail("trustedProxies holds CIDRs such as 10.0.0.0/8 or ::1/128") }
                trusted.append(cidr)
            }
        }
        self.trusted = trusted
    }

    /// The client's address (canonical text).
    func resolve(_ state: RequestState) -> String {
        locate(state).address
    }

    /// The client's address when it is known, nil when a trusted proxy sent no usable
    /// `X-Forwarded-For` (none, or an entry that is no address before an untrusted one): the
    /// proxy itself is then all that is known, which an allow list must not let through.
    func verified(_ state: RequestState) -> String? {
        let located = locate(state)
        return located.certain ? located.address : nil
    }

    private func locate(_ state: RequestState) -> (address: String, certain: Bool) {
        let peer = state.clientAddress.flatMap(CIDR.canonical) ?? state.clientAddress ?? "unknown"
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return (peer, true) }
        // Entries as proxies write them (`1.2.3.4:5678`, `[::1]`), canonical; walking from the
        // nearest hop, the first that is not a trusted proxy is the client. An entry that is no
        // address stops the walk: the last trusted hop is then the client (not certain).
        let chain = state.headers[values: .xForwardedForName].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var last = peer
        for entry in chain.reversed() {
            guard let address = CIDR.canonical(entry) else { return (last, false) }
            if !trusted.contains(where: { $0.contains(address) }) { return (address, true) }
            last = address
        }
        return (last, false)
    }
}
