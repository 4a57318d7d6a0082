import GatehouseCore
import GatehouseLua
import HTTPTypes
import NIOCore

/// Host functions behind `response.*` constructors, response objects and `problems.*`.
extension PolicyRuntime {
    func responseAPI() -> [(String, HostFunction)] {
        [
            // response_new(status, headers?, body?, defaultContentType?) -> rid, index
            ("response_new", { [unowned self] L in
                guard let state = self.current else { return .error("responses can only be created while a request is being handled") }
                guard let code = L.toInteger(at: 1), (100...599).contains(code) else {
                    return .error("response status must be an integer from 100 to 599")
                }
                var headers = HTTPFields()
                if L.type(at: 2) == .table {
                    L.pushNil()
                    while L.next(2) {
                        guard let name = L.toString(at: -2), let field = HTTPField.Name(name) else {
                            L.pop(2)
                            return .error("response headers: invalid header name")
                        }
                        // Plain values only: running a __tostring here could change the table
                        // under this traversal (the prelude converts numbers and booleans).
                        guard let value = L.plainText(at: -1) else {
                            let type = L.typeName(at: -1)
                            L.pop(2)
                            return .error("response headers: the value of '\(name)' must be a string or number, not a \(type)")
                        }
                        guard HTTPField.isValidValue(value) else {
                            L.pop(2)
                            return .error("response headers: the value of '\(name)' contains CR, LF or NUL")
                        }
                        headers[field] = value
                        L.pop(1)
                    }
                }
                var body = MessageBody.empty
                switch L.type(at: 3) {
                case .nil, .none: break
                case .string:
                    var buffer = ByteBuffer()
                    _ = L.withStringBytes(at: 3) { buffer.writeBytes($0) }
                    body = .buffered(buffer)
                default: return .error("response body must be a string or a table (encoded as JSON)")
                }
                if headers[.contentType] == nil, let type = L.toString(at: 4) { headers[.contentType] = type }
                let index = state.addResponse(ResponseState(status: HTTPResponse.Status(code: Int(code)), headers: headers, body: body))
                L.push(state.rid)
                L.push(index)
                return .values(2)
            }),
            ("response_status", { [unowned self] L in
                guard let (state, index) = self.message(L), index > 0 else { return .error("response used after its request ended") }
                L.push(state.responses[index - 1].status.code)
                return .values(1)
            }),
            ("response_set_status", { [unowned self] L in
                guard let (state, index) = self.message(L), index > 0 else { return .error("response used after its request ended") }
                guard let code = L.toInteger(at: 3), (100...599).contains(code) else {
                    return .error("response.status must be an integer from 100 to 599")
                }
                state.responses[index - 1].status = HTTPResponse.Status(code: Int(code))
                return .values(0)
            }),
            // problem_new(status, detail?, title?, type?) -> rid, index
            ("problem_new", { [unowned self] L in
                guard let state = self.current else { return .error("problems can only be created while a request is being handled") }
                guard let code = L.toInteger(at: 1), (400...599).contains(code) else {
                    return .error("a problem status must be an integer from 400 to 599")
                }
                let problem = Problem(
                    status: HTTPResponse.Status(code: Int(code)), type: L.toString(at: 4) ?? "about:blank",
                    title: L.toString(at: 3), detail: L.plainText(at: 2))
                let index = state.addResponse(ResponseState.problem(problem, path: state.path, requestId: state.requestId))
                L.push(state.rid)
                L.push(index)
                return .values(2)
            }),
        ]
    }
}
