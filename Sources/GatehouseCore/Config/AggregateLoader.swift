import HTTPTypes

/// Reading the `aggregate` handler's options (see ``AggregateConfig``).
extension ConfigLoader {
    func aggregate(_ options: ConfigNode?, at handler: ConfigNode, template: RouteTemplate, upstreams: UpstreamsConfig) throws(ConfigError) -> AggregateConfig {
        guard let options else { throw handler.error("handler 'aggregate' needs options.services") }
        var services: [String: AggregateService] = [:]
        var calls: [AggregateCall]?
        var maxCalls = 10
        for (key, value) in try options.members() {
            switch key {
            case "services":
                for (name, node) in try value.members() { services[name] = try aggregateService(node, name: name, upstreams: upstreams) }
            case "calls":
                var declared: [AggregateCall] = []
                for node in try value.elements() { declared.append(try declaredCall(node, template: template)) }
                calls = declared
            case "maxCalls":
                maxCalls = try positive(value)
            default:
                throw value.error("unknown option '\(key)' of handler 'aggregate' (services, calls, maxCalls)")
            }
        }
        guard !services.isEmpty else { throw options.error("handler 'aggregate' needs at least one service in options.services") }
        if let calls {
            guard !calls.isEmpty else { throw options.error("options.calls is empty (leave it out to take the calls from the request body)") }
            var names: Set<String> = []
            for (call, node) in zip(calls, try options.requiredMember("calls").elements()) {
                guard let service = services[call.service] else { throw node.error("unknown service '\(call.service)' (not in options.services)") }
                guard service.methods[call.method] != nil else { throw node.error("service '\(call.service)' has no method '\(call.method)'") }
                guard call.name != "errors" else { throw node.error("\"errors\" is reserved for the failures: give the call another \"name\"") }
                guard names.insert(call.name).inserted else { throw node.error("two calls answer under the name '\(call.name)': give one a \"name\"") }
            }
            guard calls.count <= maxCalls else { throw options.error("\(calls.count) calls are declared but maxCalls is \(maxCalls)") }
        }
        return AggregateConfig(services: services, calls: calls, maxCalls: maxCalls)
    }

    private func aggregateService(_ node: ConfigNode, name: String, upstreams: UpstreamsConfig) throws(ConfigError) -> AggregateService {
        let groupNode = try node.requiredMember("group")
        let group = try groupNode.string()
        guard upstreams.group(named: group) != nil else { throw groupNode.error("unknown upstream group '\(group)' (not in \(GatewayConfig.upstreamsFile))") }
        var service = AggregateService(group: group, methods: [:], timeoutMilliseconds: 5000, required: false)
        for (key, value) in try node.members() {
            switch key {
            case "group": continue
            case "timeoutMs": service.timeoutMilliseconds = try positive(value)
            case "required": service.required = try value.bool()
            case "methods":
                for (methodName, m) in try value.members() {
                    let pathNode = try m.requiredMember("path")
                    let pathText = try pathNode.string()
                    let path: CallTemplate
                    do {
                        path = try CallTemplate(pathText)
                    } catch {
                        throw pathNode.error(error.description)
                    }
                    var method = AggregateMethod(method: .get, path: path, bodyArgument: nil)
                    guard method.path.text.hasPrefix("/") else { throw pathNode.error("path starts with '/'") }
                    for (k, v) in try m.members() {
                        switch k {
                        case "path": continue
                        case "method":
                            guard let verb = HTTPRequest.Method(try v.string().uppercased()) else { throw v.error("not an HTTP method") }
                            method.method = verb
                        case "bodyArg":
                            let index = try v.int()
                            guard index >= 0 else { throw v.error("bodyArg is an argument index (0, 1, …)") }
                            method.bodyArgument = index
                        default:
                            throw v.error("unknown member '\(k)' of a method (method, path, bodyArg)")
                        }
                    }
                    service.methods[methodName] = method
                }
            default:
                throw value.error("unknown member '\(key)' of service '\(name)' (group, methods, timeoutMs, required)")
            }
        }
        guard !service.methods.isEmpty else { throw node.error("service '\(name)' has no methods") }
        return service
    }

    private func declaredCall(_ node: ConfigNode, template: RouteTemplate) throws(ConfigError) -> AggregateCall {
        let service = try node.requiredMember("service").string()
        var call = AggregateCall(name: service, service: service, method: try node.requiredMember("method").string(), args: [])
        for (key, value) in try node.members() {
            switch key {
            case "service", "method": continue
            case "name": call.name = try value.string()
            case "args":
                guard case .array(let args) = try value.json() else { throw value.error("args is an array") }
                for (i, arg) in args.enumerated() {
                    for name in Self.parameterReferences(arg) where !template.segments.contains(where: { $0 == .parameter(name) || $0 == .greedy(name) }) {
                        throw value.error("args[\(i)]: ${params.\(name)} is not a parameter of the route path \(template.text)")
                    }
                }
                call.args = args
            case "required": call.required = try value.bool()
            case "timeoutMs": call.timeoutMilliseconds = try positive(value)
            default: throw value.error("unknown member '\(key)' of a call (name, service, method, args, required, timeoutMs)")
            }
        }
        return call
    }

    /// The `${params.NAME}` strings anywhere in `value`.
    static func parameterReferences(_ value: JSONValue) -> [String] {
        switch value {
        case .string(let s) where s.hasPrefix("${params.") && s.hasSuffix("}"): return [String(s.dropFirst("${params.".count).dropLast())]
        case .array(let items): return items.flatMap(parameterReferences)
        case .object(let members): return members.values.flatMap(parameterReferences)
        default: return []
        }
    }
}
