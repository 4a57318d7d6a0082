public import HTTPTypes
import Foundation

/// What a route's CORS policy answers, following the Fetch standard's CORS protocol: the
/// preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by the
/// gateway itself, and every other answer to an allowed origin carries
/// `Access-Control-Allow-Origin` (and, as configured, `-Credentials` and `-Expose-Headers`).
extension CORSPolicyConfig {
    /// Whether `origin` (the request's `Origin`) may use the route.
    public func allows(origin: String) -> Bool {
        let origin = origin.lowercased()
        for pattern in allowedOrigins {
            // `null` (sandboxed frames, file: pages) only when listed as such.
            if pattern.lowercased() == origin || (pattern == "*" && origin != "null") { return true }
            if let wildcard = pattern.lowercased().range(of: "://*.") {
                // https://*.example.com: same scheme, one or more labels before .example.com.
                let scheme = pattern.lowercased()[..<wildcard.lowerBound]
                let suffix = "." + pattern.lowercased()[wildcard.upperBound...]
                guard let originScheme = origin.range(of: "://"), origin[..<originScheme.lowerBound] == scheme else { continue }
                let host = origin[originScheme.upperBound...]
                guard host.hasSuffix(suffix), host.count > suffix.count else { continue }
                let labels = host.dropLast(suffix.count)
                if labels.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) && !labels.hasPrefix(".") { return true }
            }
        }
        return false
    }

    /// `Access-Control-Allow-Origin`: `*` for a public policy, else the origin itself (as
    /// credentials require), with `Vary: Origin` so caches keep the answers apart.
    private func originFields(_ origin: String) -> HTTPFields {
        var fields = HTTPFields()
        if allowedOrigins.contains("*") && !allowCredentials {
            fields[.accessControlAllowOrigin] = "*"
        } else {
            fields[.accessControlAllowOrigin] = origin
            fields[.vary] = "Origin"
        }
        if allowCredentials { fields[.accessControlAllowCredentials] = "true" }
        return fields
    }

    /// The answer to a preflight: the headers of a 204, or nil when the origin, the method or
    /// one of the requested headers is not allowed.
    public func preflight(origin: String, method: String, requestHeaders: String?) -> HTTPFields? {
        guard allows(origin: origin) else { return nil }
        let method = method.uppercased()
        guard allowedMethods.contains("*") || allowedMethods.contains(method) else { return nil }
        let requested = (requestHeaders ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard allowedHeaders.contains("*") || requested.allSatisfy(allowedHeaders.contains) else { return nil }
        var fields = originFields(origin)
        fields[.vary] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        // A `*` is taken literally by browsers when credentials are included: answer with what
        // was asked instead.
        fields[.accessControlAllowMethods] = allowedMethods.contains("*") ? method : allowedMethods.joined(separator: ", ")
        if !requested.isEmpty {
            fields[.accessControlAllowHeaders] = allowedHeaders.contains("*") ? requested.joined(separator: ", ") : allowedHeaders.joined(separator: ", ")
        }
        if let maxAge { fields[.accessControlMaxAge] = String(maxAge) }
        return fields
    }

    /// Sets the CORS fields of an actual (non-preflight) answer in `headers`: any the upstream
    /// sent are replaced, whether or not the request had an `Origin`, and `Vary: Origin` is
    /// added whenever the answer depends on it, so a cache never hands one origin's answer to
    /// another. An origin the policy does not allow (or none) gets no allow headers.
    public func apply(origin: String?, to headers: inout HTTPFields) {
        for name in [HTTPField.Name.accessControlAllowOrigin, .accessControlAllowCredentials, .accessControlExposeHeaders] { headers[name] = nil }
        let public_ = allowedOrigins.contains("*") && !allowCredentials
        if !public_ {
            let vary = headers[values: .vary].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
            if !vary.contains(where: { $0.lowercased() == "origin" || $0 == "*" }) { headers.append(HTTPField(name: .vary, value: "Origin")) }
        }
        guard let origin, allows(origin: origin) else { return }
        for field in originFields(origin) where field.name != .vary { headers.append(field) }
        if !exposeHeaders.isEmpty { headers[.accessControlExposeHeaders] = exposeHeaders.joined(separator: ", ") }
    }
}
