import Foundation
public import HTTPTypes

/// The `aggregate` handler (seed 003): several calls to upstream groups in parallel, their
/// results merged into one JSON object in call order.
///
/// - Without `calls` the route takes seed 003's request body,
///   `{"calls":[{"service","method","args"}]}`, and runs those calls.
/// - With `calls` the route is a declared aggregate: the calls are fixed here and their
///   arguments may be taken from the request (`${params.id}`, `${query.x}`, `${headers.x}`).
public struct AggregateConfig: Sendable {
    /// By name, as calls refer to them.
    public var services: [String: AggregateService]
    /// A declared aggregate's calls (nil: from the request body).
    public var calls: [AggregateCall]?
    /// The most calls one request may make.
    public var maxCalls: Int

    public init(services: [String: AggregateService], calls: [AggregateCall]?, maxCalls: Int) {
        self.services = services
        self.calls = calls
        self.maxCalls = maxCalls
    }
}

/// A service calls can name: an upstream group and, per method, the request to make.
public struct AggregateService: Sendable {
    public var group: String
    public var methods: [String: AggregateMethod]
    public var timeoutMilliseconds: Int
    /// A failed call of a required service fails the whole answer (502).
    public var required: Bool

    public init(group: String, methods: [String: AggregateMethod], timeoutMilliseconds: Int, required: Bool) {
        self.group = group
        self.methods = methods
        self.timeoutMilliseconds = timeoutMilliseconds
        self.required = required
    }
}

/// How one method maps to an HTTP request: `GET /users/${args.0}`, or a body from an argument.
public struct AggregateMethod: Sendable {
    public var method: HTTPRequest.Method
    public var path: CallTemplate
    /// Send this argument as the JSON body.
    public var bodyArgument: Int?

    public init(method: HTTPRequest.Method, path: CallTemplate, bodyArgument: Int?) {
        self.method = method
        self.path = path
        self.bodyArgument = bodyArgument
    }
}

/// One call: which service and method, with which arguments, answered under which name.
public struct AggregateCall: Sendable {
    /// The key of its result (the service name unless given).
    public var name: String
    public var service: String
    public var method: String
    /// JSON arguments; in a declared aggregate, a string that is exactly `${params.x}`,
    /// `${query.x}` or `${headers.x}` is that request value.
    public var args: [JSONValue]
    /// Overrides the service's `required`.
    public var required: Bool?
    /// Shortens (never lengthens) the service's timeout.
    public var timeoutMilliseconds: Int?

    public init(name: String, service: String, method: String, args: [JSONValue], required: Bool? = nil, timeoutMilliseconds: Int? = nil) {
        self.name = name
        self.service = service
        self.method = method
        self.args = args
        self.required = required
        self.timeoutMilliseconds = timeoutMilliseconds
    }
}

/// A path template with `${args.N}` and `${args.N.field…}` references: literal text as written,
/// argument values percent-encoded (as a path segment before the `?`, as a query value after).
public struct CallTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        /// Argument index and the field path into it.
        case argument(Int, [String])
    }

    public let text: String
    public let parts: [Part]

    public init(_ text: String) throws(TemplateError) {
        var parts: [Part] = []
        for piece in try TemplateText.pieces(text, in: "path") {
            switch piece {
            case .literal(let s):
                parts.append(.literal(s))
            case .reference(let r):
                let reference = r.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard reference.count >= 2, reference[0] == "args", let index = Int(reference[1]), index >= 0, !reference.dropFirst(2).contains("") else {
                    throw TemplateError("unknown reference ${\(r)} (use ${args.N} or ${args.N.field})")
                }
                parts.append(.argument(index, Array(reference.dropFirst(2))))
            }
        }
        self.text = text
        self.parts = parts
    }

    /// The path with `args` filled in, or why not (a missing argument or a value that is not a
    /// string, number or boolean).
    public func render(_ args: [JSONValue]) -> Result<String, TemplateError> {
        var out = ""
        var inQuery = false
        for part in parts {
            switch part {
            case .literal(let s):
                out += s
                if s.contains("?") { inQuery = true }
            case .argument(let index, let fields):
                guard index < args.count else { return .failure(TemplateError("argument \(index) is missing")) }
                var value = args[index]
                for field in fields {
                    guard let next = value[field] else { return .failure(TemplateError("argument \(index) has no field '\(field)'")) }
                    value = next
                }
                let text: String
                switch value {
                case .string(let s): text = s
                case .int(let i): text = String(i)
                case .double(let d): text = String(d)
                case .bool(let b): text = b ? "true" : "false"
                case .null: return .failure(TemplateError("argument \(([String(index)] + fields).joined(separator: ".")) is missing"))
                default: return .failure(TemplateError("argument \(([String(index)] + fields).joined(separator: ".")) must be a string, number or boolean"))
                }
                if !inQuery && (text.isEmpty || text == "." || text == "..") {
                    // It would name another resource of the service (`/users/` or `/users/..`).
                    return .failure(TemplateError("argument \(([String(index)] + fields).joined(separator: ".")) makes an empty, '.' or '..' path segment"))
                }
                out += inQuery ? PathCoding.encodeQueryComponent(text) : PathCoding.encodePathSegment(text)
            }
        }
        return .success(out)
    }
}
