import Foundation
import Glibc

/// An upstream that records every byte it receives, so a test can assert what reached the
/// upstream, not only what the client got. Each connection is read until it holds one complete
/// request (by its Content-Length or its last chunk) or closes; a complete request is answered
/// with `answer` and the connection closed; an incomplete one is recorded as such.
public final class RecordingUpstream: @unchecked Sendable {
    /// What one connection delivered.
    public struct Received: Sendable {
        /// Request line and header lines, as sent.
        public let head: String
        public let body: [UInt8]
        /// A whole request arrived (head, and all of its declared or chunked body).
        public let complete: Bool

        /// The request target of the request line ("/path?query").
        public var target: String {
            let line = head.prefix { $0 != "\r" && $0 != "\n" }
            let parts = line.split(separator: " ")
            return parts.count >= 2 ? String(parts[1]) : ""
        }

        /// Every value of header `name` (case-insensitive), in order.
        public func headers(_ name: String) -> [String] {
            head.components(separatedBy: "\r\n").dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { return nil }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
    }

    public let port: Int
    private let fd: Int32
    private let answer: String
    private let lock = NSLock()
    private var log: [Received] = []

    public init(answer: String = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok") throws {
        self.answer = answer
        (fd, port) = try RawHTTP.listenLoopback()
        RawHTTP.acceptEach(fd) { [self] client in self.handle(client) }
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    /// Everything received so far, one entry per connection that sent anything.
    public var received: [Received] { lock.withLock { log } }
    /// The requests that arrived whole.
    public var completeRequests: [Received] { received.filter(\.complete) }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Waits (polling, up to `seconds`) until `condition` holds for what was received.
    public func wait(seconds: Double = 10, until condition: ([Received]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(received) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(received)
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var outcome: Received?
        while outcome == nil {
            let n = read(client, &buffer, buffer.count)
            if n > 0 { bytes.append(contentsOf: buffer[0..<n]) }
            if let whole = Self.parse(bytes, final: n <= 0) { outcome = whole }
            if n <= 0 { break }
        }
        guard let outcome else { return } // connected, sent nothing
        lock.withLock { log.append(outcome) }
        if outcome.complete {
            _ = Array(answer.utf8).withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        }
    }

    /// A complete request in `bytes`, or (when the connection ended) what arrived, incomplete.
    static func parse(_ bytes: [UInt8], final: Bool) -> Received? {
        guard let end = find([13, 10, 13, 10], in: bytes) else {
            return final && !bytes.isEmpty ? Received(head: String(decoding: bytes, as: UTF8.self), body: [], complete: false) : nil
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let body = Array(bytes[(end + 4)...])
        let probe = Received(head: head, body: body, complete: false)
        if probe.headers("transfer-encoding").contains(where: { $0.lowercased().contains("chunked") }) {
            let decoded = try? RawHTTP.dechunk(String(decoding: body, as: UTF8.self))
            if let decoded, decoded.complete {
                return Received(head: head, body: Array(decoded.body.utf8), complete: true)
            }
            return final ? probe : nil
        }
        let length = probe.headers("content-length").first.flatMap { Int($0) } ?? 0
        if body.count >= length { return Received(head: head, body: Array(body.prefix(length)), complete: true) }
        return final ? probe : nil
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        for i in 0...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
