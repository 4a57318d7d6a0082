import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately dumb HTTP/1.1 client over a plain socket: sends exactly the bytes given and
/// reads until the server closes, so tests control every header (hop-by-hop ones included).
public enum RawHTTP {
    public struct Response: Sendable {
        public let status: Int
        /// Header names lowercased, in order.
        public let headers: [(name: String, value: String)]
        public let body: String
        /// False when a chunked body ended (the connection closed) without its last chunk.
        public var bodyComplete = true

        public func header(_ name: String) -> String? {
            headers.first(where: { $0.name == name.lowercased() })?.value
        }
    }

    /// Sends `request` (use `\r\n` line ends and `Connection: close`) and parses the answer.
    /// The blocking socket work runs on a thread of its own: blocking a thread of Swift's
    /// cooperative pool would starve the gateway under test, which runs in the same process.
    public static func send(port: Int, _ request: String, timeoutSeconds: Int = 10) async throws -> Response {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            defer { close(fd) }
            try writeAll(fd, request)
            return try parse(readAnswer(fd))
        }
    }

    /// Sends `start` (a request whose body has not ended), reads the answer that comes back
    /// before the body is complete, then tries to send `rest` (ignoring a closed connection).
    public static func sendUnfinished(port: Int, _ start: String, thenSend rest: String, timeoutSeconds: Int = 10) async throws -> Response {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            defer { close(fd) }
            try writeAll(fd, start)
            let answer = readAnswer(fd)
            try? writeAll(fd, rest)
            return try parse(answer)
        }
    }

    /// Sends `text` and then ends the connection early: `halfClose` shuts down only the sending
    /// side and reads what the server answers (nil if it closed without answering); otherwise
    /// the connection is closed at once and nil returned.
    public static func sendCut(port: Int, _ text: String, halfClose: Bool, timeoutSeconds: Int = 10) async throws -> Response? {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            defer { close(fd) }
            try writeAll(fd, text)
            guard halfClose else { return nil }
            shutdown(fd, Int32(SHUT_WR))
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                received.append(contentsOf: buffer[0..<n])
            }
            return received.isEmpty ? nil : try parse(received)
        }
    }

    /// Runs blocking socket work on a new thread (see ``send(port:_:timeoutSeconds:)``).
    static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// Reads until one whole answer (head plus Content-Length body) arrived, or the connection
    /// closed (an answer without Content-Length ends there).
    static func readAnswer(_ fd: Int32) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while completeLength(received) == nil {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return received
    }

    /// Sends `requests` one after another on one keep-alive connection, reading each answer
    /// (which must carry a Content-Length) before sending the next. Stops early if the server
    /// closes the connection; the answers received so far are returned.
    public static func sendOnOneConnection(port: Int, _ requests: [String], timeoutSeconds: Int = 10) async throws -> [Response] {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            defer { close(fd) }
            var answers: [Response] = []
            for request in requests {
                guard (try? writeAll(fd, request)) != nil else { break }
                // Keep-alive answers carry a Content-Length and nothing follows them unasked.
                let answer = readAnswer(fd)
                guard completeLength(answer) != nil else { break }
                answers.append(try parse(answer))
            }
            return answers
        }
    }

    /// The size of the first complete response in `bytes` (head plus Content-Length body).
    static func completeLength(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        guard let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let headBytes = text[..<end.upperBound].utf8.count
        return bytes.count >= headBytes + length ? headBytes + length : nil
    }

    public static func writeAll(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestHarnessError("write() failed") }
            sent += n
        }
    }

    /// Opens a connection, sends nothing, and returns after how long the server closed it (nil if
    /// it was still open after `waitSeconds`).
    public static func silentConnection(port: Int, waitSeconds: Int) async throws -> Duration? {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: waitSeconds)
            defer { close(fd) }
            let started = ContinuousClock.now
            var byte: UInt8 = 0
            let n = read(fd, &byte, 1)
            return n == 0 ? ContinuousClock.now - started : nil
        }
    }

    /// Accepts connections on `fd` until it is closed, each served by `handle` on a thread of
    /// its own (the raw test upstreams' accept loop).
    public static func acceptEach(_ fd: Int32, _ handle: @escaping @Sendable (Int32) -> Void) {
        Thread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                Thread { handle(client) }.start()
            }
        }.start()
    }

    /// A listening TCP socket on 127.0.0.1 with a free port (for the raw test upstreams).
    public static func listenLoopback(backlog: Int32 = 64) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHarnessError("socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            close(fd)
            throw TestHarnessError("cannot listen on 127.0.0.1")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A blocking TCP connection to 127.0.0.1:`port` whose reads time out after `timeoutSeconds`.
    public static func connectLoopback(port: Int, timeoutSeconds: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHarnessError("socket() failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw TestHarnessError("connect() failed")
        }
        return fd
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else { throw TestHarnessError("no complete response: \(text)") }
        let lines = text[..<headerEnd.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestHarnessError("bad status line: \(lines[0])") }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = String(text[headerEnd.upperBound...])
        var complete = true
        if headers.contains(where: { $0.name == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            (body, complete) = try dechunk(body)
        }
        return Response(status: status, headers: headers, body: body, bodyComplete: complete)
    }

    /// Decodes a chunked body: its bytes, and whether its last chunk arrived. A malformed chunk
    /// or one cut short throws (failing the one test that read it) instead of trapping, which
    /// would kill the whole test process and hide every other result.
    public static func dechunk(_ text: String) throws -> (body: String, complete: Bool) {
        // Bytes, not Characters: "\r\n" is one Character in Swift, so counting Characters
        // would step over the first byte of the next chunk's size line.
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var position = 0
        func lineEnd(from start: Int) -> Int? {
            var i = start
            while i + 1 < bytes.count {
                if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
                i += 1
            }
            return nil
        }
        while true {
            guard let end = lineEnd(from: position) else {
                // Ended on a chunk boundary without the last chunk: what arrived, marked as cut.
                guard position == bytes.count else { throw TestHarnessError("chunked body cut inside a size line: \(text.debugDescription)") }
                return (String(decoding: out, as: UTF8.self), false)
            }
            let line = String(decoding: bytes[position..<end], as: UTF8.self)
            let sizeText = line.prefix { $0 != ";" }.trimmingCharacters(in: .whitespaces)
            guard !sizeText.isEmpty, let size = Int(sizeText, radix: 16), size >= 0 else {
                throw TestHarnessError("bad chunk size line \(line.debugDescription) in \(text.debugDescription)")
            }
            if size == 0 { return (String(decoding: out, as: UTF8.self), true) }
            let start = end + 2
            guard bytes.count >= start + size + 2 else { throw TestHarnessError("chunk of \(size) bytes cut short in \(text.debugDescription)") }
            out.append(contentsOf: bytes[start..<(start + size)])
            position = start + size + 2
        }
    }

    /// Opens a keep-alive connection that the server has certainly accepted: one request is
    /// sent and its answer read. The caller closes the returned descriptor.
    public static func openServedConnection(port: Int, _ request: String, timeoutSeconds: Int = 10) async throws -> Int32 {
        try await onOwnThread {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            do {
                try writeAll(fd, request)
                guard completeLength(readAnswer(fd)) != nil else { throw TestHarnessError("no complete answer on the held connection") }
                return fd
            } catch {
                close(fd)
                throw error
            }
        }
    }
}
