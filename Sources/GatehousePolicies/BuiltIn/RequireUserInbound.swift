public import GatehouseCore
import HTTPTypes

/// `require-user-inbound`: lets through only authenticated consumers whose `request.user`
/// matches, placed after an authentication policy. `match` maps dotted paths into
/// `request.user` to the values allowed there (`{ "data.tier": ["pro", "enterprise"],
/// "data.region": "eu" }`); every path must hold one of its values. No consumer at all is a 401,
/// a consumer that does not match a 403; neither names the values it lacked.
///
/// Options: `match` (required).
public struct RequireUserInbound: BuiltInInboundPolicy {
    public let name: String
    let rules: [(path: [String], allowed: [JSONValue])]

    public init(name: String, options: JSONValue, location: ConfigError? = nil) throws(ConfigError) {
        self.name = name
        func fail(_ message: String) -> ConfigError { optionError(location, policy: name, message) }
        try checkOptions(options, known: ["match"], location: location, policy: name)
        guard case .object(let match)? = options["match"], !match.isEmpty else {
            throw fail("options.match is required: { \"data.tier\": [\"pro\", \"enterprise\"] }")
        }
        var rules: [(path: [String], allowed: [JSONValue])] = []
        for (key, value) in match.sorted(by: { $0.key < $1.key }) {
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { throw fail("options.match: '\(key)' is not a dotted path such as data.tier") }
            let allowed: [JSONValue]
            switch value {
            case .array(let items) where !items.isEmpty: allowed = items
            case .string, .int, .bool: allowed = [value]
            default: throw fail("options.match.\(key) is a value or a non-empty list of values")
            }
            rules.append((path, allowed))
        }
        self.rules = rules
    }

    public func authenticate(_ state: RequestState) async -> Problem? {
        guard let user = state.user else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = #"Bearer realm="gatehouse""#
            return Problem(status: .unauthorized, type: Problem.Kind.unauthorized, detail: "This route needs an authenticated consumer.", headers: headers)
        }
        for rule in rules {
            var node: JSONValue? = user
            for field in rule.path { node = node?[field] }
            guard let node, rule.allowed.contains(node) else {
                return Problem(status: .forbidden, type: Problem.Kind.forbidden, detail: "This consumer may not use this route.")
            }
        }
        return nil
    }
}
