import Foundation
import Glibc

/// A full-duplex upstream: it answers `200` with a chunked body as soon as a request head
/// arrives, and echoes each piece of the (chunked) upload as it reads it, before the upload
/// has ended — as streaming transformers and some RPC services do.
public final class EchoingUpstream: @unchecked Sendable {
    public let port: Int
    private let fd: Int32

    public init() throws {
        (fd, port) = try RawHTTP.listenLoopback()
        RawHTTP.acceptEach(fd) { [self] client in self.handle(client) }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var seen: [UInt8] = []
        while RecordingUpstream.find([13, 10, 13, 10], in: seen) == nil {
            let n = read(client, &buffer, buffer.count)
            guard n > 0 else { return }
            seen.append(contentsOf: buffer[0..<n])
        }
        guard (try? RawHTTP.writeAll(client, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")) != nil else { return }
        // Echo the raw bytes that follow the head (the chunked upload, framing included) as
        // chunks of the answer, as they arrive, until the upload's last chunk.
        var body = Array(seen[(RecordingUpstream.find([13, 10, 13, 10], in: seen)! + 4)...])
        while true {
            if !body.isEmpty {
                let framed = String(body.count, radix: 16) + "\r\n" + String(decoding: body, as: UTF8.self) + "\r\n"
                guard (try? RawHTTP.writeAll(client, framed)) != nil else { return }
                if String(decoding: body, as: UTF8.self).hasSuffix("0\r\n\r\n") { break }
                body = []
            }
            let n = read(client, &buffer, buffer.count)
            guard n > 0 else { return }
            body = Array(buffer[0..<n])
        }
        _ = try? RawHTTP.writeAll(client, "0\r\n\r\n")
    }
}
