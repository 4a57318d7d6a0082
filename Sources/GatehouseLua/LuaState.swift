public import CGatehouseLua

/// A Lua thread seen from Swift: only non-raising operations (see `CGatehouseLua`).
///
/// A `LuaState` is a borrowed pointer, valid while its VM is alive and only on the VM's thread.
public struct LuaState: @unchecked Sendable, Equatable {
    public let pointer: OpaquePointer

    @inlinable
    public init(_ pointer: OpaquePointer) { self.pointer = pointer }

    // MARK: Stack

    @inlinable public var top: Int32 { gh_gettop(pointer) }
    @inlinable public func setTop(_ index: Int32) { gh_settop(pointer, index) }
    @inlinable public func pop(_ n: Int32 = 1) { gh_settop(pointer, -n - 1) }
    @inlinable public func absolute(_ index: Int32) -> Int32 { gh_absindex(pointer, index) }
    @inlinable @discardableResult public func ensureStack(_ n: Int32) -> Bool { gh_checkstack(pointer, n) != 0 }
    @inlinable public func pushValue(at index: Int32) { gh_pushvalue(pointer, index) }
    @inlinable public func remove(at index: Int32) { gh_remove(pointer, index) }
    @inlinable public func insert(at index: Int32) { gh_insert(pointer, index) }
    @inlinable public func type(at index: Int32) -> LuaType { LuaType(rawValue: gh_type(pointer, index)) ?? .none }
    @inlinable public func isInteger(at index: Int32) -> Bool { gh_isinteger(pointer, index) != 0 }

    /// Moves `n` values from this thread's top to `other`'s top.
    @inlinable public func move(_ n: Int32, to other: LuaState) { gh_xmove(pointer, other.pointer, n) }

    // MARK: Push

    @inlinable public func pushNil() { gh_pushnil(pointer) }
    @inlinable public func push(_ value: Bool) { gh_pushboolean(pointer, value ? 1 : 0) }
    @inlinable public func push(_ value: Int) { gh_pushinteger(pointer, Int64(value)) }
    @inlinable public func push(_ value: Int64) { gh_pushinteger(pointer, value) }
    @inlinable public func push(_ value: Double) { gh_pushnumber(pointer, value) }
    @inlinable public func push(lightUserdata: UnsafeMutableRawPointer) { gh_pushlightuserdata(pointer, lightUserdata) }

    @inlinable
    public func push(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            gh_pushlstring(pointer, bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, bytes.count)
        }
    }

    @inlinable
    public func push(bytes: UnsafeRawBufferPointer) {
        gh_pushlstring(pointer, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    @inlinable public func newTable(arrayCapacity: Int32 = 0, recordCapacity: Int32 = 0) {
        gh_createtable(pointer, arrayCapacity, recordCapacity)
    }

    // MARK: Read

    @inlinable public func toBool(at index: Int32) -> Bool { gh_toboolean(pointer, index) != 0 }

    /// The value as an integer if it is a number with an exact integer value (or a string that
    /// converts), else nil.
    @inlinable
    public func toInteger(at index: Int32) -> Int64? {
        var ok: Int32 = 0
        let value = gh_tointegerx(pointer, index, &ok)
        return ok != 0 ? value : nil
    }

    @inlinable
    public func toNumber(at index: Int32) -> Double? {
        guard type(at: index) == .number else { return nil }
        var ok: Int32 = 0
        let value = gh_tonumberx(pointer, index, &ok)
        return ok != 0 ? value : nil
    }

    /// A string value's bytes as Swift text; nil if the value is not a string (numbers are not
    /// converted, so the stack is never modified).
    @inlinable
    public func toString(at index: Int32) -> String? {
        var length = 0
        guard let bytes = gh_tostring_raw(pointer, index, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    /// Calls `body` with a string value's bytes without copying them.
    @inlinable
    public func withStringBytes<R>(at index: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        var length = 0
        guard let bytes = gh_tostring_raw(pointer, index, &length) else { return nil }
        return body(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    @inlinable public func toUserdata(at index: Int32) -> UnsafeMutableRawPointer? { gh_touserdata(pointer, index) }

    /// The text of a string, number (as Lua's `tostring` writes it) or boolean; nil for any
    /// other type. Never runs Lua code (no `__tostring`): a host function must never run policy
    /// code, which could change a table under a traversal or raise through the Swift frame.
    public func plainText(at index: Int32) -> String? {
        var length = 0
        guard let bytes = gh_tostring_plain(pointer, index, &length) else { return nil }
        defer { pop() }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    /// The Lua type name of the value at `index` ("nil", "table", ...).
    public func typeName(at index: Int32) -> String {
        String(cString: gh_typename(pointer, gh_type(pointer, index)))
    }

    // MARK: Tables (raw: no metamethods run)

    @discardableResult @inlinable
    public func rawGet(_ tableIndex: Int32) -> LuaType { LuaType(rawValue: gh_rawget(pointer, tableIndex)) ?? .none }
    @discardableResult @inlinable
    public func rawGet(_ tableIndex: Int32, index n: Int64) -> LuaType { LuaType(rawValue: gh_rawgeti(pointer, tableIndex, n)) ?? .none }
    @discardableResult @inlinable
    public func rawGet(_ tableIndex: Int32, field: String) -> LuaType {
        let t = absolute(tableIndex)
        push(field)
        return LuaType(rawValue: gh_rawget(pointer, t)) ?? .none
    }
    /// `t[k] = v` with k and v on top (k below v); pops both.
    @inlinable public func rawSet(_ tableIndex: Int32) { gh_rawset(pointer, tableIndex) }
    /// `t[n] = v` with v on top; pops it.
    @inlinable public func rawSet(_ tableIndex: Int32, index n: Int64) { gh_rawseti(pointer, tableIndex, n) }
    /// `t[field] = v` with v on top; pops it.
    @inlinable
    public func rawSet(_ tableIndex: Int32, field: String) {
        let t = absolute(tableIndex)
        push(field)
        insert(at: -2)
        gh_rawset(pointer, t)
    }
    @inlinable public func rawLength(at index: Int32) -> Int { gh_rawlen(pointer, index) }
    /// Table traversal: with a key on top, pushes the next key and value; false at the end.
    @inlinable public func next(_ tableIndex: Int32) -> Bool { gh_next(pointer, tableIndex) != 0 }

    // MARK: Registry references

    /// Pops the top value and anchors it in the registry.
    @inlinable public func ref() -> Int32 { gh_ref(pointer) }
    @inlinable public func unref(_ ref: Int32) { gh_unref(pointer, ref) }
    @inlinable @discardableResult public func pushRef(_ ref: Int32) -> LuaType { LuaType(rawValue: gh_getref(pointer, ref)) ?? .none }

    // MARK: Functions

    /// Pushes a Lua function that calls the VM's host function `id`.
    @inlinable public func pushHostFunction(_ id: HostFunctionID) { gh_push_host_function(pointer, id.rawValue) }
    /// Whether a host function running on this thread may yield it.
    @inlinable public var isYieldable: Bool { gh_is_yieldable(pointer) != 0 }
}

/// Lua value types.
public enum LuaType: Int32, Sendable {
    case none = -1, `nil` = 0, boolean, lightUserdata, number, string, table, function, userdata, thread
}
