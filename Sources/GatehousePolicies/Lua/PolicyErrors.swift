public import GatehouseCore
public import GatehouseLua


/// A Lua policy or handler that failed: a script error, a budget, or a bad return value.
public struct PolicyFailure: Error, Sendable {
    public let policy: String
    public let message: String
    public let script: LuaScriptError?

    public init(policy: String, message: String, script: LuaScriptError? = nil) {
        self.policy = policy
        self.message = message
        self.script = script
    }
}

/// A plugin that cannot be loaded: where in the config it is used and where in the file it broke.
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let script: LuaScriptError?
    public let config: ConfigError?

    public init(message: String, script: LuaScriptError? = nil, config: ConfigError? = nil) {
        self.message = message
        self.script = script
        self.config = config
    }

    public var description: String {
        var out = ""
        if let config { out += config.file + (config.line.map { ":\($0)" } ?? "") + (config.pointer.isEmpty ? "" : " (\(config.pointer))") + ": " }
        return out + message
    }
}
