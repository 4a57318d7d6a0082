import HTTPTypes

/// A named CORS policy (`corsPolicies` in policies.json), referenced by a route's
/// `x-gatehouse-route.corsPolicy`. `anything-goes` is built in (every origin, method and
/// header, with credentials: for development).
public struct CORSPolicyConfig: Sendable, Equatable {
    public var name: String
    /// Exact origins (`https://app.example.com`), wildcard subdomains
    /// (`https://*.example.com`: one or more labels, not the bare domain), or `*` (any origin
    /// but `null`, which only an explicit `"null"` allows; never with credentials).
    public var allowedOrigins: [String]
    /// Upper-case methods, or `*` (any).
    public var allowedMethods: [String]
    /// Lower-case header names, or `*` (whatever the preflight asks for).
    public var allowedHeaders: [String]
    public var exposeHeaders: [String]
    public var allowCredentials: Bool
    /// Seconds a browser may cache a preflight answer.
    public var maxAge: Int?

    public init(
        name: String, allowedOrigins: [String], allowedMethods: [String], allowedHeaders: [String], exposeHeaders: [String],
        allowCredentials: Bool, maxAge: Int?
    ) {
        self.name = name
        self.allowedOrigins = allowedOrigins
        self.allowedMethods = allowedMethods
        self.allowedHeaders = allowedHeaders
        self.exposeHeaders = exposeHeaders
        self.allowCredentials = allowCredentials
        self.maxAge = maxAge
    }

    public static let anythingGoes = CORSPolicyConfig(
        name: "anything-goes", allowedOrigins: ["*"], allowedMethods: ["*"], allowedHeaders: ["*"], exposeHeaders: [],
        allowCredentials: true, maxAge: 600)
}

extension ConfigLoader {
    /// `corsPolicies` of policies.json (optional).
    func corsPolicies(_ root: ConfigNode) throws(ConfigError) -> [String: CORSPolicyConfig] {
        guard let list = try root.member("corsPolicies") else { return [:] }
        var out: [String: CORSPolicyConfig] = [:]
        for node in try list.elements() {
            let nameNode = try node.requiredMember("name")
            let name = try nameNode.string()
            guard !name.isEmpty, name != "anything-goes", name != "none" else {
                throw nameNode.error("a CORS policy needs a name other than anything-goes and none (both built in)")
            }
            guard out[name] == nil else { throw nameNode.error("duplicate CORS policy '\(name)'") }
            var policy = CORSPolicyConfig(name: name, allowedOrigins: [], allowedMethods: ["GET", "HEAD", "POST"], allowedHeaders: [], exposeHeaders: [], allowCredentials: false, maxAge: nil)
            for (key, value) in try node.members() {
                switch key {
                case "name": break
                case "allowedOrigins":
                    policy.allowedOrigins = try value.stringArray()
                    for origin in policy.allowedOrigins where origin != "*" {
                        guard Self.isOriginPattern(origin) else {
                            throw value.error("'\(origin)' is not an origin (scheme://host[:port], no path; * or https://*.example.com for wildcards)")
                        }
                    }
                case "allowedMethods":
                    policy.allowedMethods = try value.stringArray().map { $0.uppercased() }
                    for method in policy.allowedMethods where method != "*" && HTTPRequest.Method(method) == nil {
                        throw value.error("'\(method)' is not an HTTP method")
                    }
                case "allowedHeaders", "exposeHeaders":
                    let names = try value.stringArray().map { $0.lowercased() }
                    for header in names where header != "*" && HTTPField.Name(header) == nil {
                        throw value.error("'\(header)' is not a valid header name")
                    }
                    if key == "allowedHeaders" { policy.allowedHeaders = names } else { policy.exposeHeaders = names }
                case "allowCredentials": policy.allowCredentials = try value.bool()
                case "maxAge":
                    let seconds = try value.int()
                    guard seconds >= 0 else { throw value.error("maxAge is a number of seconds, 0 or more") }
                    policy.maxAge = seconds
                default:
                    throw value.error("unknown CORS option '\(key)' (name, allowedOrigins, allowedMethods, allowedHeaders, exposeHeaders, allowCredentials, maxAge)")
                }
            }
            guard !policy.allowedOrigins.isEmpty else { throw node.error("CORS policy '\(name)' needs allowedOrigins") }
            if policy.allowCredentials && policy.allowedOrigins.contains("*") {
                throw node.error("CORS policy '\(name)': allowedOrigins * with allowCredentials would let every site read answers made with its visitors' credentials; list the origins (anything-goes does this for development only)")
            }
            out[name] = policy
        }
        return out
    }

    static func isOriginPattern(_ text: String) -> Bool {
        guard let scheme = text.range(of: "://") else { return false }
        let host = text[scheme.upperBound...]
        return !text[..<scheme.lowerBound].isEmpty && !host.isEmpty && !host.contains("/") && !host.contains("?") && !host.contains("#")
            && (host.hasPrefix("*.") ? !host.dropFirst(2).contains("*") : !host.contains("*"))
    }
}
