import Foundation
import Glibc

/// An upstream that answers every request with a large body generated as it is written (never
/// held in memory), counting the bytes the socket accepted: a test compares that with what the
/// client read to see whether the gateway passes backpressure on or buffers.
public final class StreamingUpstream: @unchecked Sendable {
    public let port: Int
    public let bodyBytes: Int
    private let fd: Int32
    private let lock = NSLock()
    private var written = 0

    public init(bodyBytes: Int) throws {
        self.bodyBytes = bodyBytes
        (fd, port) = try RawHTTP.listenLoopback()
        RawHTTP.acceptEach(fd) { [self] client in self.handle(client) }
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    /// Body bytes the upstream's socket has taken so far.
    public var bytesWritten: Int { lock.withLock { written } }

    public func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while RecordingUpstream.find([13, 10, 13, 10], in: request) == nil {
            let n = read(client, &buffer, buffer.count)
            guard n > 0 else { return }
            request.append(contentsOf: buffer[0..<n])
        }
        guard (try? RawHTTP.writeAll(client, "HTTP/1.1 200 OK\r\nContent-Length: \(bodyBytes)\r\nConnection: close\r\n\r\n")) != nil else { return }
        let block = [UInt8](repeating: UInt8(ascii: "z"), count: 65536)
        var left = bodyBytes
        while left > 0 {
            let n = block.withUnsafeBytes { send(client, $0.baseAddress, min(left, $0.count), Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            left -= n
            lock.withLock { written += n }
        }
    }
}
