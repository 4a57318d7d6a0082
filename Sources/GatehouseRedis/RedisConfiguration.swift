import Foundation

/// Where and how to reach Redis: from a `redis://` or `rediss://` URL
/// (`redis://[[user]:password@]host[:port][/db]`) plus timeouts and TLS settings.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// `AUTH` after connecting: with a user (Redis 6 ACLs) or the password alone.
    public var username: String?
    public var password: String?
    /// `SELECT` after connecting (0 is Redis' default and sends nothing).
    public var database: Int
    /// `rediss://`: TLS through swift-nio-ssl, with SNI and verification.
    public var tls: Bool
    /// PEM file of CA certificates trusted instead of the system's (for `rediss://`).
    public var caFile: String?
    /// Verify the server's certificate (chain and name). Off only for development.
    public var tlsVerify: Bool
    public var connectTimeout: Duration
    /// From writing a command until its reply: beyond it the connection is closed and the
    /// command (and every one pipelined behind it) fails with ``RedisError/timedOut``.
    public var commandTimeout: Duration

    public init(
        host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0, tls: Bool = false,
        caFile: String? = nil, tlsVerify: Bool = true, connectTimeout: Duration = .seconds(1), commandTimeout: Duration = .milliseconds(250)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.caFile = caFile
        self.tlsVerify = tlsVerify
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses a `redis://` or `rediss://` URL; the error says what is wrong with it (never
    /// repeating a password).
    public init(url text: String) throws(RedisURLError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw RedisURLError("not a URL; expected redis://host:port or rediss://host:port")
        }
        guard scheme == "redis" || scheme == "rediss" else { throw RedisURLError("the scheme must be redis:// or rediss://, not \(scheme)://") }
        guard let host = components.host, !host.isEmpty else { throw RedisURLError("the URL names no host") }
        let port = components.port ?? 6379
        guard (1...65535).contains(port) else { throw RedisURLError("the port must be from 1 to 65535") }
        var database = 0
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let db = Int(path), db >= 0 else { throw RedisURLError("the path must be a database number (redis://host:6379/2)") }
            database = db
        }
        if components.query != nil || components.fragment != nil { throw RedisURLError("the URL takes no query or fragment") }
        let user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding ?? $0 }
        let password = components.password.flatMap { $0.removingPercentEncoding ?? $0 }
        self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port,
            username: password == nil ? nil : user, password: password ?? user, database: database, tls: scheme == "rediss")
    }

    /// `host:port/db` for logs and errors (never the credentials).
    public var endpoint: String {
        "\(tls ? "rediss" : "redis")://\(host.contains(":") ? "[\(host)]" : host):\(port)\(database == 0 ? "" : "/\(database)")"
    }
}

/// What is wrong with a Redis URL.
public struct RedisURLError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
