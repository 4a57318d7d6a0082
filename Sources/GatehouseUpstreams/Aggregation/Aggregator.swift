public import GatehouseCore
public import HTTPTypes
public import Logging
import NIOCore

/// Runs the calls of an `aggregate` handler in parallel, each through its service's upstream
/// group (balancing, breakers, failover, one retry), and merges their results into one JSON
/// object in call order, whatever order they finished in.
public struct Aggregator: Sendable {
    public let config: AggregateConfig
    public let groups: UpstreamGroupSet
    public let upstream: any UpstreamForwarding
    public let logger: Logger

    public init(config: AggregateConfig, groups: UpstreamGroupSet, upstream: any UpstreamForwarding, logger: Logger) {
        self.config = config
        self.groups = groups
        self.upstream = upstream
        self.logger = logger
    }

    /// The merged answer: the body (`{ name: result | null, …, "errors": { name: reason } }`)
    /// and whether an optional call failed.
    public struct Answer: Sendable {
        public var body: [UInt8]
        public var partial: Bool
    }

    /// Largest body one call's answer may have.
    public static let maxCallBodyBytes = 8 << 20

    /// Parses seed 003's request body, `{"calls":[{"service","method","args"}]}` (each call may
    /// also say `name`, `required`, `timeoutMs`); a 400 problem says what is wrong with it.
    public func calls(fromBody body: [UInt8]) throws(Problem) -> [AggregateCall] {
        func bad(_ detail: String) -> Problem { Problem(status: .badRequest, type: Problem.Kind.badRequest, detail: detail) }
        guard let value = try? JSONValue.parse(body), case .array(let list)? = value["calls"] else {
            throw bad("The body must be a JSON object with a \"calls\" array.")
        }
        guard !list.isEmpty else { throw bad("\"calls\" is empty.") }
        guard list.count <= config.maxCalls else { throw bad("At most \(config.maxCalls) calls are allowed per request; \(list.count) were sent.") }
        var calls: [AggregateCall] = []
        var names: Set<String> = []
        for (i, item) in list.enumerated() {
            guard let service = item["service"]?.stringValue, let method = item["method"]?.stringValue else {
                throw bad("Call \(i) needs \"service\" and \"method\" strings.")
            }
            guard let known = config.services[service] else { throw bad("Call \(i): there is no service '\(service)'.") }
            guard known.methods[method] != nil else { throw bad("Call \(i): service '\(service)' has no method '\(method)'.") }
            var args: [JSONValue] = []
            switch item["args"] {
            case nil, .null?: break
            case .array(let a)?: args = a
            default: throw bad("Call \(i): \"args\" must be an array.")
            }
            var call = AggregateCall(name: item["name"]?.stringValue ?? service, service: service, method: method, args: args)
            if case .bool(let required)? = item["required"] { call.required = required }
            if case .int(let ms)? = item["timeoutMs"], ms > 0 { call.timeoutMilliseconds = Int(clamping: ms) }
            guard call.name != "errors" else { throw bad("Call \(i): \"errors\" is reserved for the failures; give the call another \"name\".") }
            guard names.insert(call.name).inserted else { throw bad("Two calls answer under the name '\(call.name)': give one a \"name\".") }
            calls.append(call)
        }
        return calls
    }

    /// Runs `calls` with `headers` (the client's request headers, as policies left them) and
    /// merges the results. A failed required call makes the whole a 502 problem listing the
    /// failed required calls; a failed optional one is `null` with its reason under `errors`.
    public func run(_ calls: [AggregateCall], headers: HTTPFields, client: ClientInfo, requestId: String) async throws(Problem) -> Answer {
        var base = headers
        // Not the client's body framing, and nothing that would change what a call answers
        // (a compressed body, a 304, a range): every call is a plain JSON request.
        for name in [HTTPField.Name.contentLength, .contentType, .transferEncoding, .expect, .acceptEncoding, .range, .ifRange,
                     .ifMatch, .ifNoneMatch, .ifModifiedSince, .ifUnmodifiedSince] {
            base[name] = nil
        }
        base[.accept] = "application/json"
        let callHeaders = base
        let outcomes = await withTaskGroup(of: (Int, Outcome).self) { tasks in
            for (index, call) in calls.enumerated() {
                tasks.addTask { (index, await self.perform(call, headers: callHeaders, client: client, requestId: requestId)) }
            }
            var outcomes = [Outcome](repeating: .failure("not run"), count: calls.count)
            for await (index, outcome) in tasks { outcomes[index] = outcome }
            return outcomes
        }
        var failedRequired: [String] = []
        var errors: [(String, String)] = []
        for (call, outcome) in zip(calls, outcomes) {
            guard case .failure(let reason) = outcome else { continue }
            if call.required ?? config.services[call.service]?.required ?? false {
                failedRequired.append("\(call.name) (\(reason))")
            } else {
                errors.append((call.name, reason))
            }
        }
        if !failedRequired.isEmpty {
            throw Problem(
                status: .badGateway, type: Problem.Kind.aggregateFailed,
                detail: "Required calls failed: " + failedRequired.joined(separator: ", ") + ".")
        }
        // Written by hand, in call order: a dictionary would lose it.
        var text = "{"
        for (i, (call, outcome)) in zip(calls, outcomes).enumerated() {
            if i > 0 { text += "," }
            text.appendJSONString(call.name)
            text += ":"
            switch outcome {
            case .success(let value): text += String(decoding: value.serialized(), as: UTF8.self)
            case .failure: text += "null"
            }
        }
        if !errors.isEmpty {
            text += ",\"errors\":{"
            for (i, (name, reason)) in errors.enumerated() {
                if i > 0 { text += "," }
                text.appendJSONString(name)
                text += ":"
                text.appendJSONString(reason)
            }
            text += "}"
        }
        text += "}"
        return Answer(body: Array(text.utf8), partial: !errors.isEmpty)
    }

    enum Outcome: Sendable {
        case success(JSONValue)
        /// Why, in words for the client: names the service and group, never an address.
        case failure(String)
    }

    private func perform(_ call: AggregateCall, headers: HTTPFields, client: ClientInfo, requestId: String) async -> Outcome {
        guard let service = config.services[call.service], let method = service.methods[call.method] else { return .failure("unknown call") }
        guard let group = groups[service.group] else { return .failure("upstream group '\(service.group)' is not configured") }
        let target: String
        switch method.path.render(call.args) {
        case .success(let t): target = t
        case .failure(let error): return .failure(error.description)
        }
        let queryStart = target.firstIndex(of: "?")
        let path = queryStart.map { String(target[..<$0]) } ?? target
        // An argument of ".." or "" would move the call to another resource of the service.
        if PathCoding.hasDotSegment(inURL: "http://h" + path) || path.contains("//") {
            return .failure("an argument makes an empty, '.' or '..' path segment")
        }
        let query = queryStart.map { String(target[target.index(after: $0)...]) }
        var headers = headers
        var body = MessageBody.empty
        if let index = method.bodyArgument {
            guard index < call.args.count else { return .failure("argument \(index) (the body) is missing") }
            body = .buffered(ByteBuffer(bytes: call.args[index].serialized()))
            headers[.contentType] = "application/json"
        }
        let timeout = min(call.timeoutMilliseconds ?? service.timeoutMilliseconds, service.timeoutMilliseconds)
        let upstream = self.upstream
        let logger = self.logger
        // The engine's response deadline fires first (so the target's breaker counts it); this
        // bound is the backstop for a connect or a body that runs past it.
        let outcome: Outcome? = await withTimeout(.milliseconds(timeout + 250)) { [headers, body] in
            do {
                let (response, _) = try await upstream.forward(
                    group: group, path: path, query: query, method: method.method, headers: headers, body: body,
                    client: client, preserveHost: false, hashKey: nil, requestId: requestId, logger: logger,
                    responseTimeout: .milliseconds(Int64(timeout)))
                let bytes: ByteBuffer
                switch response.body {
                case .empty: bytes = ByteBuffer()
                case .buffered(let b): bytes = b
                case .stream(let s): bytes = try await s.collect(limit: Self.maxCallBodyBytes)
                }
                guard (200..<300).contains(response.status.code) else { return .failure("answered \(response.status.code)") }
                let raw = Array(bytes.readableBytesView)
                if let value = try? JSONValue.parse(raw) { return .success(value) }
                return .success(.string(String(decoding: raw, as: UTF8.self)))
            } catch let problem as Problem {
                if problem.type == Problem.Kind.upstreamTimeout { return .failure("no answer within \(timeout) ms") }
                if problem.type == Problem.Kind.upstreamUnavailable && problem.status.code == 503 {
                    return .failure("no target of upstream group '\(group.name)' is available")
                }
                return .failure((problem.detail ?? problem.title).lowercasedFirst)
            } catch is BodyTooLarge {
                return .failure("the answer exceeds \(Self.maxCallBodyBytes) bytes")
            } catch {
                return .failure("the answer broke off")
            }
        }
        return outcome ?? .failure("no answer within \(timeout) ms")
    }
}

extension String {
    /// "The upstream …" → "the upstream …", for a reason inside a sentence.
    var lowercasedFirst: String {
        guard let first else { return self }
        return first.lowercased() + dropFirst()
    }
}
