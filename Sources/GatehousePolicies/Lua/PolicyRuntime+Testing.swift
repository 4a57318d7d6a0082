public import GatehouseCore
public import GatehouseLua

/// What `gatehouse test` needs from a runtime: the cases a test module declares, and running
/// a case's `check(result)` on the VM.
extension PolicyRuntime {
    /// One case of a `*_test.lua` module.
    public struct TestCase: Sendable {
        public let name: String
        /// A policy name from policies.json, or nil for a route case.
        public let policy: String?
        /// `"GET /v1/x"` for a route case.
        public let route: String?
        public let request: JSONValue
        /// The response an outbound policy receives (policy cases).
        public let response: JSONValue
        /// The stub upstream's answer (route cases).
        public let upstream: JSONValue
        let checkRef: Int32
    }

    /// Requires `module` (a `*_test.lua` file) and reads the cases it returns.
    public func testCases(module: String) async -> Result<[TestCase], LuaScriptError> {
        await onLoop { () -> Result<[TestCase], LuaScriptError> in
            let L = self.vm.main
            L.pushRef(self.requireRef)
            L.push(module)
            if case .failure(let error) = Result(catching: { () throws(LuaScriptError) in try self.vm.protectedCall(arguments: 1, results: 1) }) {
                return .failure(error)
            }
            defer { L.setTop(0) }
            guard L.type(at: -1) == .table else {
                return .failure(LuaScriptError(message: "\(module).lua must return a list of test cases"))
            }
            var cases: [TestCase] = []
            let count = L.rawLength(at: -1)
            for i in 0..<count {
                L.rawGet(-1, index: Int64(i + 1))
                defer { L.pop() }
                guard L.type(at: -1) == .table else {
                    return .failure(LuaScriptError(message: "\(module).lua: case #\(i + 1) must be a table"))
                }
                func string(_ field: String) -> String? {
                    L.rawGet(-1, field: field)
                    defer { L.pop() }
                    return L.toString(at: -1)
                }
                func json(_ field: String) -> JSONValue {
                    L.rawGet(-1, field: field)
                    defer { L.pop() }
                    if case .success(let value) = L.readJSON(at: -1) { return value }
                    return .null
                }
                let name = string("name") ?? "case #\(i + 1)"
                guard L.rawGet(-1, field: "check") == .function else {
                    L.pop()
                    return .failure(LuaScriptError(message: "\(module).lua: case '\(name)' needs a check = function(result) ... end"))
                }
                let ref = L.ref()
                cases.append(TestCase(
                    name: name, policy: string("policy"), route: string("route"), request: json("request"),
                    response: json("response"), upstream: json("upstream"), checkRef: ref))
            }
            return .success(cases)
        }
    }

    /// Calls the case's `check(result)`; `result.context.custom` is the request's live table.
    /// Returns the assertion error, if any.
    public func check(_ testCase: TestCase, result: JSONValue, state: RequestState?) async -> LuaScriptError? {
        await onLoop { () -> LuaScriptError? in
            let L = self.vm.main
            defer {
                L.unref(testCase.checkRef)
                L.setTop(0)
            }
            L.pushRef(testCase.checkRef)
            L.push(json: result)
            if let state, state.rid != 0 {
                // result.context = { custom = objects[rid].custom, requestId = ... }
                L.newTable()
                let base = L.top
                L.pushRef(self.objectsRef)
                L.push(state.rid)
                if L.rawGet(-2) == .table, L.rawGet(-1, field: "custom") == .table {
                    L.rawSet(base, field: "custom")
                }
                L.setTop(base)
                L.push(state.requestId)
                L.rawSet(-2, field: "requestId")
                L.rawSet(-2, field: "context")
            }
            if case .failure(let error) = Result(catching: { () throws(LuaScriptError) in try self.vm.protectedCall(arguments: 1, results: 0) }) {
                return error
            }
            return nil
        }
    }
}
