import GatehouseCore
import GatehouseLua
import HTTPTypes
import NIOCore

/// Host functions behind the `request` object (see the prelude and docs/lua-api.md).
extension PolicyRuntime {
    func requestAPI() -> [(String, HostFunction)] {
        [
            ("request_get", { [unowned self] L in
                guard let state = self.state(L) else { return .error("request used after its request ended") }
                switch L.toString(at: 2) ?? "" {
                case "method": L.push(state.method.rawValue)
                case "path": L.push(state.path)
                case "url": L.push(state.url)
                case "query":
                    let items = PathCoding.queryItems((state.query ?? "")[...])
                    L.newTable(recordCapacity: Int32(clamping: items.count))
                    for (name, value) in items {
                        L.push(value)
                        L.rawSet(-2, field: name)
                    }
                case "params":
                    L.newTable(recordCapacity: Int32(clamping: state.params.count))
                    for (name, value) in state.params {
                        L.push(value)
                        L.rawSet(-2, field: name)
                    }
                case "user":
                    if let user = state.user { L.push(json: user) } else { L.pushNil() }
                default:
                    L.pushNil()
                }
                return .values(1)
            }),
            ("request_set", { [unowned self] L in
                guard let state = self.state(L) else { return .error("request used after its request ended") }
                switch L.toString(at: 2) ?? "" {
                case "method":
                    guard let text = L.toString(at: 3), let method = HTTPRequest.Method(text.uppercased()) else {
                        return .error("request.method must be an HTTP method name")
                    }
                    state.method = method
                    return .values(0)
                case "path":
                    guard let path = L.toString(at: 3), path.hasPrefix("/"),
                          !path.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
                    else {
                        return .error("request.path must start with '/' and contain no spaces, control characters, '?' or '#' (use request:setQuery for the query)")
                    }
                    // The same normaliser as for client paths: no dot segment, however spelled.
                    guard let segments = try? PathCoding.segments(of: path[...], allowEncodedSlashes: true) else {
                        return .error("request.path must not contain '.' or '..' segments (also encoded) or invalid percent-encodings")
                    }
                    state.path = PathCoding.canonicalPath(segments, trailingSlash: path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/"))
                    return .values(0)
                case "user":
                    if L.type(at: 3) == .nil {
                        state.setUser(nil)
                    } else {
                        guard L.type(at: 3) == .table else { return .error("request.user must be a table {sub = ..., data = {...}} or nil") }
                        switch L.readJSON(at: 3) {
                        case .success(let user): state.setUser(user)
                        case .failure(let error): return .error("request.user: \(error)")
                        }
                    }
                    L.push(state.userVersion)
                    return .values(1)
                default:
                    return .error("cannot set request.\(L.toString(at: 2) ?? "?")")
                }
            }),
            ("user_version", { [unowned self] L in
                guard let state = self.state(L) else { return .error("request used after its request ended") }
                L.push(state.userVersion)
                return .values(1)
            }),
            ("request_set_query", { [unowned self] L in
                guard let state = self.state(L) else { return .error("request used after its request ended") }
                guard let name = L.toString(at: 2), !name.isEmpty else { return .badArgument(1, "setQuery", expected: "string", state: L, slot: 2) }
                let value: String?
                switch L.type(at: 3) {
                case .nil, .none: value = nil
                case .string: value = L.toString(at: 3)
                case .number: value = L.plainText(at: 3)
                default: return .badArgument(2, "setQuery", expected: "string or nil", state: L, slot: 3)
                }
                var items = PathCoding.queryItems((state.query ?? "")[...]).filter { $0.name != name }
                if let value { items.append((name, value)) }
                state.query = items.isEmpty ? nil : items.map { PathCoding.encodeQueryComponent($0.name) + "=" + PathCoding.encodeQueryComponent($0.value) }.joined(separator: "&")
                return .values(0)
            }),
            ("body_text", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("body read after its request ended") }
                let body = index == 0 ? state.body : state.responses[index - 1].body
                switch body {
                case .empty:
                    L.push("")
                    return .values(1)
                case .buffered(let buffer):
                    buffer.withUnsafeReadableBytes { L.push(bytes: $0) }
                    return .values(1)
                case .stream:
                    // Reading takes I/O: suspend this coroutine until the body has arrived.
                    guard L == self.currentCoroutine else {
                        return .error("cannot read a body inside a coroutine the policy created itself")
                    }
                    state.pending = .readBody(index: index)
                    return .yield
                }
            }),
            ("body_set", { [unowned self] L in
                guard let (state, index) = self.message(L) else { return .error("body set after its request ended") }
                var buffer = ByteBuffer()
                switch L.type(at: 3) {
                case .nil: break
                case .string: _ = L.withStringBytes(at: 3) { buffer.writeBytes($0) }
                default: return .badArgument(1, "setBody", expected: "string or nil", state: L, slot: 3)
                }
                let body: MessageBody = buffer.readableBytes == 0 ? .empty : .buffered(buffer)
                if index == 0 {
                    state.body = body
                    state.headers[.contentLength] = nil
                } else {
                    state.responses[index - 1].body = body
                    state.responses[index - 1].headers[.contentLength] = nil
                }
                return .values(0)
            }),
        ]
    }
}
