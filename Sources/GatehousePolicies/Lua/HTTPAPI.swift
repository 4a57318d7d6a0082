import GatehouseCore
import GatehouseLua
import HTTPTypes

/// Host functions behind `http.fetch` and `http.all`: the coroutine yields, Swift does the
/// I/O, and the coroutine resumes on the same loop; other requests use the VM meanwhile.
extension PolicyRuntime {
    func httpAPI() -> [(String, HostFunction)] {
        [
            // http_fetch(url, options?) -> rid, index | nil, error
            ("http_fetch", { [unowned self] L in
                if let refusal = self.refuseWait(L, "http.fetch") { return refusal }
                switch self.fetchRequest(L, url: 1, options: 2, defaults: nil) {
                case .success(let request):
                    self.current!.pending = .fetch(request)
                    return .yield
                case .failure(let message):
                    return .error(message.text)
                }
            }),
            // http_all({ {url, options} | url, ... }, options?) -> { {rid=, index=} | {error=}, ... }
            ("http_all", { [unowned self] L in
                if let refusal = self.refuseWait(L, "http.all") { return refusal }
                guard L.type(at: 1) == .table else { return .badArgument(1, "all", expected: "table", state: L) }
                let defaults = L.type(at: 2) == .table ? 2 : Int32?.none
                var requests: [FetchRequest] = []
                for i in 1...max(1, L.rawLength(at: 1)) where L.rawLength(at: 1) > 0 {
                    L.rawGet(1, index: Int64(i))
                    let item = L.top
                    let result: Result<FetchRequest, FetchError>
                    if L.type(at: item) == .table {
                        L.rawGet(item, index: 1)
                        L.rawGet(item, index: 2)
                        result = self.fetchRequest(L, url: item + 1, options: item + 2, defaults: defaults)
                    } else {
                        result = self.fetchRequest(L, url: item, options: 0, defaults: defaults)
                    }
                    L.setTop(item - 1)
                    switch result {
                    case .success(let request): requests.append(request)
                    case .failure(let message): return .error("http.all call #\(i): \(message.text)")
                    }
                }
                self.current!.pending = .fetchAll(requests)
                return .yield
            }),
        ]
    }

    struct FetchError: Error { let text: String }

    /// Yielding is only possible from a request's own coroutine (not at module load, not in a
    /// coroutine the policy created, not across a C boundary).
    func refuseWait(_ L: LuaState, _ function: String) -> HostResult? {
        guard current != nil, L == currentCoroutine else {
            return .error("\(function) cannot wait here: call it from a policy or handler, not at module load or inside a coroutine the policy created")
        }
        guard L.isYieldable else {
            return .error("\(function) cannot wait here: the call is inside a C function (such as a table.sort comparator or a string.gsub callback) that cannot be suspended")
        }
        return nil
    }

    /// Reads `url` and an options table (`method`, `headers`, `body`, `timeout` seconds, and
    /// `upstream`: a group name, with `url` then the path to fetch from it).
    func fetchRequest(_ L: LuaState, url: Int32, options: Int32, defaults: Int32?) -> Result<FetchRequest, FetchError> {
        guard let text = L.toString(at: url) else { return .failure(FetchError(text: "the URL must be a string")) }
        var request = FetchRequest(url: text, method: .get, headers: [:], body: nil, timeout: .seconds(10))
        let tables = [defaults, options > 0 && L.type(at: options) == .table ? options : nil].compactMap { $0 }
        for table in tables {
            if L.rawGet(table, field: "upstream") == .string { request.upstream = L.toString(at: -1) }
            L.pop()
        }
        if let group = request.upstream {
            guard text.hasPrefix("/"), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .failure(FetchError(text: "with upstream = \"\(group)\", the URL is the path to fetch (starting with '/')"))
            }
        } else if !(text.hasPrefix("http://") || text.hasPrefix("https://")) {
            return .failure(FetchError(text: "the URL must be an absolute http:// or https:// URL (or a path, with the upstream option naming a group)"))
        }
        for table in tables {
            if L.rawGet(table, field: "method") == .string, let m = HTTPRequest.Method(L.toString(at: -1)!.uppercased()) { request.method = m }
            L.pop()
            if L.rawGet(table, field: "timeout") == .number, let seconds = L.toNumber(at: -1), seconds > 0 {
                request.timeout = .milliseconds(Int64(seconds * 1000))
            }
            L.pop()
            if L.rawGet(table, field: "headers") == .table {
                let headers = L.absolute(-1)
                L.pushNil()
                while L.next(headers) {
                    // Plain values only: a __tostring run here could change the table under
                    // this traversal (the prelude converts numbers and booleans).
                    guard let name = L.toString(at: -2), let field = HTTPField.Name(name) else {
                        L.pop(3)
                        return .failure(FetchError(text: "fetch headers: invalid header name"))
                    }
                    guard let value = L.plainText(at: -1), HTTPField.isValidValue(value) else {
                        L.pop(3)
                        return .failure(FetchError(text: "fetch headers: the value of '\(name)' must be a string or number without CR, LF or NUL"))
                    }
                    request.headers[field] = value
                    L.pop()
                }
            }
            L.pop()
            switch L.rawGet(table, field: "body") {
            case .string: request.body = L.toString(at: -1)
            case .table:
                if case .success(let json) = L.readJSON(at: -1) {
                    request.body = String(decoding: json.serialized(), as: UTF8.self)
                    if request.headers[.contentType] == nil { request.headers[.contentType] = "application/json" }
                }
            default: break
            }
            L.pop()
        }
        return .success(request)
    }
}
