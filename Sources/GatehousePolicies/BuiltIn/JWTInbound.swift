import Foundation
public import GatehouseCore
import HTTPTypes
import JWTKit
public import Logging

/// `jwt-inbound`: verifies a JSON Web Token and sets `request.user = {sub = claims.sub, data = claims}`.
///
/// Keys come from the policy's options (`keys`: HMAC secrets through `$env`, PEM public keys,
/// or JWKs) or from a JWKS URL (fetched without blocking, cached, refetched on an unknown `kid`
/// at most once per `jwksRefreshIntervalSeconds`, and the last good set kept when the JWKS host
/// is down). jwt-kit picks the key by `kid`, never by the token's `alg`; in addition the token's
/// `alg` must be one the policy accepts, so `none` and HS/RS confusion are refused.
public final class JWTInbound: BuiltInInboundPolicy {
    public let name: String
    /// Configured keys, one collection per algorithm: only keys of the token's own `alg` are
    /// ever tried (jwt-kit would otherwise fall back to its default key whatever the alg).
    let staticKeys: [String: JWTKeyCollection]
    let algorithms: Set<String>
    let issuers: [String]?
    let audiences: [String]?
    let clockSkew: Int64
    let requireExpiration: Bool
    let jwksURL: String?
    let jwksMaxAge: Duration
    let jwksRefreshInterval: Duration
    let header: HTTPField.Name
    let scheme: String
    let cookie: String?
    let allowUnauthenticated: Bool
    /// Remove the token (its header, or its cookie) once it is accepted, so the upstream never sees it.
    let hideCredentials: Bool
    let services: RuntimeServices
    let logger: Logger

    static let asymmetric: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    public init(name: String, options: JSONValue, services: RuntimeServices, logger: Logger, location: ConfigError) async throws(ConfigError) {
        func fail(_ message: String) -> ConfigError { optionError(location, policy: name, message) }
        try checkOptions(options, known: [
            "keys", "jwksUrl", "jwksCacheSeconds", "jwksRefreshIntervalSeconds", "algorithms", "issuer", "audience", "clockSkewSeconds",
            "requireExpiration", "headerName", "authScheme", "cookieName", "allowUnauthenticatedRequests", "hideCredentials",
        ], booleans: ["requireExpiration", "allowUnauthenticatedRequests", "hideCredentials"], location: location, policy: name)
        func strings(_ key: String) -> [String]? {
            switch options[key] {
            case .string(let s)?: return [s]
            case .array(let a)?: return a.compactMap(\.stringValue)
            default: return nil
            }
        }
        self.name = name
        self.services = services
        self.logger = logger
        self.issuers = strings("issuer")
        self.audiences = strings("audience")
        self.clockSkew = options["clockSkewSeconds"]?.intValue ?? 60
        self.requireExpiration = options["requireExpiration"]?.boolValue ?? true
        self.jwksURL = options["jwksUrl"]?.stringValue
        self.jwksMaxAge = .seconds(options["jwksCacheSeconds"]?.intValue ?? 3600)
        self.jwksRefreshInterval = .seconds(options["jwksRefreshIntervalSeconds"]?.intValue ?? 300)
        let headerName = options["headerName"]?.stringValue ?? "Authorization"
        guard let header = HTTPField.Name(headerName) else { throw fail("options.headerName is not a valid header name") }
        self.header = header
        self.scheme = options["authScheme"]?.stringValue ?? (header == .authorization ? "Bearer" : "")
        self.cookie = options["cookieName"]?.stringValue
        self.allowUnauthenticated = options["allowUnauthenticatedRequests"]?.boolValue ?? false
        self.hideCredentials = options["hideCredentials"]?.boolValue ?? false

        var collections: [String: JWTKeyCollection] = [:]
        var algorithms: Set<String> = []
        for (i, spec) in (options["keys"]?.arrayValue ?? []).enumerated() {
            if let jwkJSON = spec["jwk"] {
                // A public JWK (RSA, EC or OKP) with its "alg".
                guard let alg = jwkJSON["alg"]?.stringValue ?? spec["alg"]?.stringValue, Self.asymmetric.contains(alg) else {
                    throw fail("options.keys[\(i)].jwk needs an \"alg\" (RS*, PS*, ES* or EdDSA)")
                }
                guard case .object(var members) = jwkJSON else { throw fail("options.keys[\(i)].jwk must be an object") }
                members["alg"] = .string(alg)
                members["kid"] = .string(members["kid"]?.stringValue ?? spec["kid"]?.stringValue ?? "gatehouse-key-\(i)")
                do {
                    let jwk = try JSONDecoder().decode(JWK.self, from: Data(JSONValue.object(members).serialized()))
                    let keys = collections[alg] ?? JWTKeyCollection()
                    collections[alg] = keys
                    try await keys.add(jwk: jwk)
                } catch {
                    throw fail("options.keys[\(i)].jwk cannot be read (\(error))")
                }
                algorithms.insert(alg)
                continue
            }
            guard let alg = spec["alg"]?.stringValue else { throw fail("options.keys[\(i)].alg is required") }
            // Keys without a kid get one: jwt-kit keeps a single kid-less ("default") key.
            let kid = JWKIdentifier(string: spec["kid"]?.stringValue ?? "gatehouse-key-\(i)")
            let keys = collections[alg] ?? JWTKeyCollection()
            collections[alg] = keys
            do {
                switch alg {
                case "HS256", "HS384", "HS512":
                    // At least as long as the hash output (RFC 7518 §3.2); jwt-kit asserts on less.
                    let minimum = alg == "HS256" ? 32 : alg == "HS384" ? 48 : 64
                    guard let secret = spec["secret"]?.stringValue, secret.utf8.count >= minimum else {
                        throw fail("options.keys[\(i)]: \(alg) needs a secret of at least \(minimum) bytes (use $env)")
                    }
                    let digest: DigestAlgorithm = alg == "HS256" ? .sha256 : alg == "HS384" ? .sha384 : .sha512
                    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: kid)
                case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
                    guard let pem = spec["pem"]?.stringValue else { throw fail("options.keys[\(i)].pem is required for \(alg)") }
                    let key = try Insecure.RSA.PublicKey(pem: pem)
                    let digest: DigestAlgorithm = alg.hasSuffix("256") ? .sha256 : alg.hasSuffix("384") ? .sha384 : .sha512
                    if alg.hasPrefix("PS") {
                        await keys.add(pss: key, digestAlgorithm: digest, kid: kid)
                    } else {
                        await keys.add(rsa: key, digestAlgorithm: digest, kid: kid)
                    }
                case "ES256":
                    guard let pem = spec["pem"]?.stringValue else { throw fail("options.keys[\(i)].pem is required for ES256") }
                    await keys.add(ecdsa: try ES256PublicKey(pem: pem), kid: kid)
                case "ES384":
                    guard let pem = spec["pem"]?.stringValue else { throw fail("options.keys[\(i)].pem is required for ES384") }
                    await keys.add(ecdsa: try ES384PublicKey(pem: pem), kid: kid)
                case "ES512":
                    guard let pem = spec["pem"]?.stringValue else { throw fail("options.keys[\(i)].pem is required for ES512") }
                    await keys.add(ecdsa: try ES512PublicKey(pem: pem), kid: kid)
                case "EdDSA":
                    guard let pem = spec["pem"]?.stringValue else { throw fail("options.keys[\(i)].pem is required for EdDSA") }
                    await keys.add(eddsa: try EdDSA.PublicKey(pem: pem), kid: kid)
                default:
                    throw fail("options.keys[\(i)].alg '\(alg)' is not supported (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)")
                }
            } catch let error as ConfigError {
                throw error
            } catch {
                throw fail("options.keys[\(i)]: the \(alg) key cannot be read (\(error))")
            }
            algorithms.insert(alg)
        }
        if jwksURL != nil { algorithms.formUnion(strings("algorithms").map(Set.init) ?? Self.asymmetric) }
        guard !algorithms.isEmpty else { throw fail("give options.keys or options.jwksUrl") }
        if let allowed = strings("algorithms") { algorithms.formIntersection(allowed) }
        self.staticKeys = collections
        self.algorithms = algorithms
    }

    public func authenticate(_ state: RequestState) async -> Problem? {
        guard let token = extractToken(state) else {
            return allowUnauthenticated ? nil : unauthorized(nil, "No bearer token was provided.")
        }
        guard let header = Self.header(of: token) else { return unauthorized("invalid_token", "The token is malformed.") }
        // RFC 7515 §4.1.11: a `crit` header lists extensions the recipient must understand, or
        // reject the token. Gatehouse implements none, so any `crit` is a refusal (an empty or
        // malformed one too: the RFC forbids both).
        if header["crit"] != nil {
            return unauthorized("invalid_token", "The token requires an extension the gateway does not support (crit).")
        }
        guard let alg = header["alg"]?.stringValue, algorithms.contains(alg) else {
            return unauthorized("invalid_token", "The token's signing algorithm is not accepted.")
        }
        let kid = header["kid"]?.stringValue
        var collection = staticKeys[alg]
        if let jwksURL {
            guard var keys = await services.jwks.keys(url: jwksURL, maxAge: jwksMaxAge, forceRefresh: false, minRefreshInterval: jwksRefreshInterval, fetcher: services.fetcher, logger: logger) else {
                return Problem(status: .serviceUnavailable, type: Problem.Kind.unauthorized, detail: "The signing keys are unavailable; try again later.")
            }
            if let kid, !keys.kids.contains(kid) {
                // A key we have not seen: the issuer may have rotated. Refetch, at most once per interval.
                if let refreshed = await services.jwks.keys(url: jwksURL, maxAge: jwksMaxAge, forceRefresh: true, minRefreshInterval: jwksRefreshInterval, fetcher: services.fetcher, logger: logger) {
                    keys = refreshed
                }
                guard keys.kids.contains(kid) else { return unauthorized("invalid_token", "The token's signing key is not known.") }
            }
            collection = keys.collection
        }
        guard let collection else { return unauthorized("invalid_token", "The token's signing algorithm is not accepted.") }
        let claims: [String: JSONValue]
        do {
            claims = try await collection.verify(token, as: Claims.self, iteratingKeys: kid == nil || jwksURL == nil).values
        } catch {
            return unauthorized("invalid_token", "The token's signature is not valid.")
        }
        let now = Int64(Date().timeIntervalSince1970)
        if let exp = claims["exp"]?.intValue {
            if now > exp + clockSkew { return unauthorized("invalid_token", "The token has expired.") }
        } else if requireExpiration {
            return unauthorized("invalid_token", "The token has no expiration time.")
        }
        if let nbf = claims["nbf"]?.intValue, now + clockSkew < nbf {
            return unauthorized("invalid_token", "The token is not valid yet.")
        }
        if let issuers, !issuers.contains(claims["iss"]?.stringValue ?? "") {
            return unauthorized("invalid_token", "The token's issuer is not accepted.")
        }
        if let audiences {
            let presented: [String] = switch claims["aud"] {
            case .string(let s)?: [s]
            case .array(let a)?: a.compactMap(\.stringValue)
            default: []
            }
            if !presented.contains(where: audiences.contains) {
                return unauthorized("invalid_token", "The token's audience is not accepted.")
            }
        }
        state.setUser(.object(["sub": claims["sub"] ?? .null, "data": .object(claims)]))
        if hideCredentials { removeToken(from: state) }
        return nil
    }

    /// Removes the token the request carried, wherever it was: the header, and the cookie from
    /// `Cookie` (the other cookies kept, in one field as RFC 6265 wants), for `hideCredentials`.
    func removeToken(from state: RequestState) {
        state.headers[header] = nil
        guard let cookie else { return }
        let pairs = state.headers[values: .cookie].flatMap { $0.split(separator: ";") }.map { $0.trimmingCharacters(in: .whitespaces) }
        let kept = pairs.filter { !$0.isEmpty && $0.split(separator: "=", maxSplits: 1).first.map(String.init) != cookie }
        guard kept.count != pairs.count else { return }
        state.headers[values: .cookie] = kept.isEmpty ? [] : [kept.joined(separator: "; ")]
    }

    static func cookieValue(_ name: String, in header: String) -> String? {
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                return String(parts[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    private func extractToken(_ state: RequestState) -> String? {
        if let cookie {
            for header in state.headers[values: .cookie] {
                if let value = Self.cookieValue(cookie, in: header) { return value }
            }
        }
        guard let value = state.headers[header] else { return nil }
        if scheme.isEmpty { return value.isEmpty ? nil : value }
        guard value.count > scheme.count + 1, value.prefix(scheme.count).lowercased() == scheme.lowercased(),
              value.dropFirst(scheme.count).first == " " else { return nil }
        let token = value.dropFirst(scheme.count + 1).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// The decoded JOSE header, or nil when the token is not three base64url parts.
    static func header(of token: String) -> JSONValue? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, var text = parts.first.map(String.init) else { return nil }
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let json = try? JSONValue.parse(Array(data)), case .object = json else { return nil }
        return json
    }

    /// 401 with RFC 6750's `WWW-Authenticate`. The detail never echoes the token.
    private func unauthorized(_ error: String?, _ detail: String) -> Problem {
        var headers = HTTPFields()
        var challenge = "Bearer realm=\"gatehouse\""
        if let error { challenge += ", error=\"\(error)\", error_description=\"\(detail)\"" }
        headers[.wwwAuthenticate] = challenge
        return Problem(status: .unauthorized, type: Problem.Kind.unauthorized, detail: detail, headers: headers)
    }
}

/// Every claim of a token, as JSON.
struct Claims: JWTPayload {
    var values: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    // Time, issuer and audience are checked by the policy, with its clock skew and lists.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
