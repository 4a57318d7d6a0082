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
    }

    public let port: Int
    private let fd: Int32
    private let behaviour: Behaviour
    private let lock = NSLock()
    private var accepted = 0

    public init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw TestHarnessError("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
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
            }
            _ = Array(answer.utf8).withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            close(client)
        }
    }
}
