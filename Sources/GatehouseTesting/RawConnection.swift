import Foundation
import Glibc

/// A blocking client connection driven step by step (send, read some, wait, read the rest), for
/// tests about pacing: a client that reads slowly, or waits for an interim answer. Reads time
/// out after `timeoutSeconds`; use it from a thread of its own (``run(_:)``).
public final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var leftover: [UInt8] = []

    /// - Parameter receiveBufferBytes: caps the socket's receive buffer (which Linux otherwise
    ///   grows to `tcp_rmem`'s maximum), for tests about what piles up in between.
    public init(port: Int, timeoutSeconds: Int = 10, receiveBufferBytes: Int32? = nil) throws {
        fd = try RawHTTP.connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit { close(fd) }

    public func send(_ text: String) throws { try RawHTTP.writeAll(fd, text) }

    /// Reads until `count` bytes arrived in all (or the connection ended or timed out).
    public func read(atLeast count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received.count < count {
            let n = Glibc.read(fd, &buffer, min(buffer.count, count - received.count))
            guard n > 0 else { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return received
    }

    /// Reads until `marker` arrived (or the connection ended or timed out).
    public func read(until marker: String) -> String {
        var received: [UInt8] = []
        var byte: UInt8 = 0
        let needle = Array(marker.utf8)
        while !received.ends(with: needle) {
            guard Glibc.read(fd, &byte, 1) == 1 else { break }
            received.append(byte)
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Reads one response that carries a Content-Length (nil if the connection ended first);
    /// bytes after it stay for the next call.
    public func readResponse() throws -> RawHTTP.Response? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while RawHTTP.completeLength(leftover) == nil {
            let n = Glibc.read(fd, &buffer, buffer.count)
            guard n > 0 else { return nil }
            leftover.append(contentsOf: buffer[0..<n])
        }
        let length = RawHTTP.completeLength(leftover)!
        let response = try RawHTTP.parse(Array(leftover[..<length]))
        leftover.removeFirst(length)
        return response
    }

    /// Half-closes the connection: the server sees the end of the client's input.
    public func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Counts bytes until the server closes the connection.
    public func drain() -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            guard n > 0 else { return total }
            total += n
        }
    }

    /// Runs blocking work on a thread of its own, off Swift's cooperative pool.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await RawHTTP.onOwnThread(work)
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
