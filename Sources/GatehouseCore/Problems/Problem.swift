public import HTTPTypes

/// An error the gateway answers with, rendered as RFC 9457 `application/problem+json`.
///
/// `detail` is shown to the client, so it never carries internal addresses, stack traces or
/// secrets: those go to the log line that carries the same request id.
public struct Problem: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// A URI reference naming the problem type; "about:blank" when the status says it all.
    public var type: String
    public var title: String
    public var detail: String?
    /// Extra headers (e.g. `Allow` for 405, `WWW-Authenticate` for 401).
    public var headers: HTTPFields

    public init(status: HTTPResponse.Status, type: String = "about:blank", title: String? = nil, detail: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.type = type
        self.title = title ?? (status.reasonPhrase.isEmpty ? Self.reasonPhrase(status.code) : status.reasonPhrase)
        self.detail = detail
        self.headers = headers
    }

    /// The standard reason phrase of a status (statuses built from a bare code carry none).
    public static func reasonPhrase(_ code: Int) -> String {
        switch code {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: code < 500 ? "Client Error" : "Server Error"
        }
    }

    /// The media type of every problem body.
    public static let contentType = "application/problem+json"

    /// The JSON body: type, title, status, detail, instance (the request path) and requestId.
    public func body(instance: String, requestId: String) -> String {
        var out = "{\"type\":"
        out.appendJSONString(type)
        out += ",\"title\":"
        out.appendJSONString(title)
        out += ",\"status\":\(status.code)"
        if let detail {
            out += ",\"detail\":"
            out.appendJSONString(detail)
        }
        out += ",\"instance\":"
        out.appendJSONString(instance)
        out += ",\"requestId\":"
        out.appendJSONString(requestId)
        out += "}"
        return out
    }
}

extension Problem {
    /// Problem type URIs used by the gateway itself, documented in docs/config.md ("Problem types").
    public enum Kind {
        public static let routeNotFound = "urn:gatehouse:problem:route-not-found"
        public static let methodNotAllowed = "urn:gatehouse:problem:method-not-allowed"
        public static let unauthorized = "urn:gatehouse:problem:unauthorized"
        /// A policy refused the request for who or where it comes from (`ip-restriction-inbound`).
        public static let forbidden = "urn:gatehouse:problem:forbidden"
        public static let policyError = "urn:gatehouse:problem:policy-error"
        public static let upstreamUnavailable = "urn:gatehouse:problem:upstream-unavailable"
        public static let upstreamTimeout = "urn:gatehouse:problem:upstream-timeout"
        /// The upstream answered, but not with valid HTTP (a status outside 200-599, ...).
        public static let upstreamInvalidResponse = "urn:gatehouse:problem:upstream-invalid-response"
        public static let badRequest = "urn:gatehouse:problem:bad-request"
        public static let payloadTooLarge = "urn:gatehouse:problem:payload-too-large"
        public static let configuration = "urn:gatehouse:problem:configuration"
        /// A `rate-limit-inbound` policy refused the request.
        public static let rateLimited = "urn:gatehouse:problem:rate-limited"
        /// A `rate-limit-inbound` policy with `onStoreFailure: "deny"` could not reach its store.
        public static let rateLimitStoreUnavailable = "urn:gatehouse:problem:rate-limit-store-unavailable"
        /// Every connection the gateway may open to the upstream is busy and the wait ran out.
        public static let upstreamBusy = "urn:gatehouse:problem:upstream-busy"
        /// A required call of an `aggregate` handler failed.
        public static let aggregateFailed = "urn:gatehouse:problem:aggregate-failed"
    }
}

extension String {
    /// Appends `value` as a JSON string literal.
    public mutating func appendJSONString(_ value: String) {
        append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": append("\\\"")
            case "\\": append("\\\\")
            case "\n": append("\\n")
            case "\r": append("\\r")
            case "\t": append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: unicodeScalars.append(scalar)
            }
        }
        append("\"")
    }
}
