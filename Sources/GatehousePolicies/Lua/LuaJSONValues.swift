public import GatehouseCore
public import GatehouseLua

/// Conversions between Lua values and ``JSONValue`` (request.user, options, json.*, log fields).
extension LuaState {
    /// The light userdata that stands for JSON `null` inside Lua tables (`json.null`).
    public static var jsonNull: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 0x6E75_6C6C)! }

    /// Pushes a JSON value as Lua values: objects and arrays become tables, null becomes
    /// `json.null` inside containers and `nil` at the top level.
    public func push(json: JSONValue, topLevel: Bool = true) {
        ensureStack(4)
        switch json {
        case .null:
            if topLevel { pushNil() } else { push(lightUserdata: Self.jsonNull) }
        case .bool(let b): push(b)
        case .int(let i): push(i)
        case .double(let d): push(d)
        case .string(let s): push(s)
        case .array(let items):
            newTable(arrayCapacity: Int32(clamping: items.count))
            for (i, item) in items.enumerated() {
                push(json: item, topLevel: false)
                rawSet(-2, index: Int64(i + 1))
            }
        case .object(let members):
            newTable(recordCapacity: Int32(clamping: members.count))
            for (key, value) in members {
                push(json: value, topLevel: false)
                rawSet(-2, field: key)
            }
        }
    }

    /// Reads the value at `index` as JSON. Tables whose keys are exactly 1...n become arrays
    /// (an empty table becomes an empty object); other tables need string keys.
    public func readJSON(at index: Int32, depth: Int = 0) -> Result<JSONValue, JSONConversionError> {
        guard depth < 64 else { return .failure(JSONConversionError("nesting deeper than 64 levels (is there a cycle?)")) }
        switch type(at: index) {
        case .nil, .none: return .success(.null)
        case .boolean: return .success(.bool(toBool(at: index)))
        case .number:
            if isInteger(at: index), let i = toInteger(at: index) { return .success(.int(i)) }
            let d = toNumber(at: index) ?? 0
            guard d.isFinite else { return .failure(JSONConversionError("cannot represent \(d) in JSON")) }
            return .success(.double(d))
        case .string: return .success(.string(toString(at: index) ?? ""))
        case .lightUserdata where toUserdata(at: index) == Self.jsonNull: return .success(.null)
        case .table: return readTable(at: absolute(index), depth: depth)
        default: return .failure(JSONConversionError("cannot convert a \(typeName(at: index)) value to JSON"))
        }
    }

    private func readTable(at t: Int32, depth: Int) -> Result<JSONValue, JSONConversionError> {
        ensureStack(4)
        let length = rawLength(at: t)
        var count = 0
        var object: [String: JSONValue] = [:]
        var integerKeys = true
        pushNil()
        while next(t) {
            count += 1
            // key at -2, value at -1
            if type(at: -2) == .string {
                integerKeys = false
                let key = toString(at: -2) ?? ""
                switch readJSON(at: -1, depth: depth + 1) {
                case .success(let v): object[key] = v
                case .failure(let e): pop(2); return .failure(e)
                }
            } else if isInteger(at: -2) {
                // handled below as an array element
            } else {
                let t = typeName(at: -2)
                pop(2)
                return .failure(JSONConversionError("table keys must be strings (or 1...n for arrays), found a \(t) key"))
            }
            pop(1)
        }
        if count == 0 { return .success(.object([:])) }
        if integerKeys && count == length {
            var items: [JSONValue] = []
            items.reserveCapacity(length)
            for i in 1...length {
                rawGet(t, index: Int64(i))
                let r = readJSON(at: -1, depth: depth + 1)
                pop(1)
                switch r {
                case .success(let v): items.append(v)
                case .failure(let e): return .failure(e)
                }
            }
            return .success(.array(items))
        }
        if !integerKeys && object.count == count { return .success(.object(object)) }
        return .failure(JSONConversionError("a table mixes array items and named keys"))
    }
}

/// Why a Lua value cannot become JSON.
public struct JSONConversionError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
