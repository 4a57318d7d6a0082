import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An upstream that misbehaves on purpose, over a raw socket on its own thread.
public final class BadUpstream: @unchecked Sendable {
    public enum Behaviour: Sendable {
        /// Answers bytes that are not HTTP.
        case garbage
        /// Closes the connection without answering.
        case closeWithoutAnswer
        /// Sends a head promising 1,000 bytes, 10 of them, then closes (a small body, which the
        /// gateway collects before answering).
        case truncatedBody
        /// Sends a head promising 1,000,000 bytes, 10 of them, then closes (a large body, which
        /// the gateway streams).
        case truncatedLargeBody
        /// Keeps connections alive and answers `200 ok` as soon as a request head arrives,
        /// before reading the body (as nginx's `return` does), then discards the body
        /// (Content-Length or chunked). Each connection is served on its own thread.
        case answersBeforeReadingBody
        /// Answers `401` as soon as the request head arrives, with a chunked body whose last
        /// chunk comes 100 ms later, and never reads the upload.
        case refusesUploadAfterHead
    }

    public let port: Int
    private let fd: Int32
    private let behaviour: Behaviour
    private let lock = NSLock()
    private var accepted = 0

    public init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        (fd, port) = try RawHTTP.listenLoopback()
        Thread { [self] in self.serve() }.start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var connections: Int { lock.withLock { accepted } }

    public func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            lock.withLock { accepted += 1 }
            if case .answersBeforeReadingBody = behaviour {
                Thread { Self.answerBeforeReading(client) }.start()
                continue
            }
            if case .refusesUploadAfterHead = behaviour {
                Thread { Self.refuseAfterHead(client) }.start()
                continue
            }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var received: [UInt8] = []
            while !String(decoding: received, as: UTF8.self).contains("\r\n\r\n") {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                received.append(contentsOf: buffer[0..<n])
            }
            let answer: String
            switch behaviour {
            case .garbage: answer = "THIS IS NOT HTTP\r\n\r\n"
            case .closeWithoutAnswer: answer = ""
            case .truncatedBody: answer = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n0123456789"
            case .truncatedLargeBody: answer = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: text/plain\r\n\r\n0123456789"
            case .answersBeforeReadingBody, .refusesUploadAfterHead: answer = "" // served on their own threads above
            }
            _ = Array(answer.utf8).withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            close(client)
        }
    }

    /// One keep-alive connection of `.answersBeforeReadingBody`.
    private static func answerBeforeReading(_ client: Int32) {
        defer { close(client) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { return false }
            pending.append(contentsOf: buffer[0..<n])
            return true
        }
        let headEnd: [UInt8] = Array("\r\n\r\n".utf8)
        let chunkedEnd: [UInt8] = Array("0\r\n\r\n".utf8)
        func find(_ needle: [UInt8]) -> Int? {
            guard pending.count >= needle.count else { return nil }
            for i in 0...(pending.count - needle.count) where Array(pending[i..<(i + needle.count)]) == needle { return i }
            return nil
        }
        while true {
            var end = find(headEnd)
            while end == nil {
                guard fill() else { return }
                end = find(headEnd)
            }
            let head = String(decoding: pending[..<end!], as: UTF8.self).lowercased()
            pending.removeFirst(end! + headEnd.count)
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
            _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if head.contains("transfer-encoding: chunked") {
                var last = find(chunkedEnd)
                while last == nil {
                    guard fill() else { return }
                    last = find(chunkedEnd)
                }
                pending.removeFirst(last! + chunkedEnd.count)
            } else if let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                      let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                while pending.count < length {
                    guard fill() else { return }
                }
                pending.removeFirst(length)
            }
        }
    }

    /// One connection of `.refusesUploadAfterHead`.
    private static func refuseAfterHead(_ client: Int32) {
        defer { close(client) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !String(decoding: received, as: UTF8.self).contains("\r\n\r\n") {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { return }
            received.append(contentsOf: buffer[0..<n])
        }
        func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { write(client, $0.baseAddress, $0.count) } }
        send("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n")
        usleep(100_000)
        send("0\r\n\r\n")
        usleep(3_000_000) // keep the connection open, unread, while the test runs
    }
}
