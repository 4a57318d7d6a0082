import CHiredis
import NIOCore

/// RESP2 decoding by hiredis' reader (`redisReader`): bytes are fed as they arrive and whole
/// replies come out, however the stream was split. hiredis builds its own `redisReply` tree,
/// which is copied into a ``RedisValue`` and freed at once. Confined to one event loop.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        // Only fails on allocation failure.
        reader = redisReaderCreate()!
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Appends bytes read from the connection.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw .protocolError(errorText) }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RedisValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw .protocolError(errorText) }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.value(of: reply.assumingMemoryBound(to: redisReply.self))
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        func text() -> String {
            guard let str = r.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self)
        }
        switch r.type {
        case REDIS_REPLY_STRING:
            guard let str = r.str else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: str, count: r.len)))
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            guard let element = r.element else { return .array([]) }
            return .array((0..<r.elements).map { value(of: element[$0]!) })
        default: return .null
        }
    }
}

/// RESP2 encoding of a command by hiredis' `redisFormatCommandArgv` (bulk strings, binary safe).
enum RESPFormat {
    static func encode(_ arguments: [[UInt8]], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + arguments.reduce(0) { $0 + $1.count + 16 })
        command(arguments, into: &buffer)
        return buffer
    }

    static func command(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        // One contiguous copy of the arguments, and a pointer and a length for each.
        var joined: [UInt8] = []
        joined.reserveCapacity(arguments.reduce(0) { $0 + $1.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        for bytes in arguments {
            offsets.append(joined.count)
            lengths.append(bytes.count)
            joined.append(contentsOf: bytes)
        }
        var target: UnsafeMutablePointer<CChar>?
        let length = joined.withUnsafeBufferPointer { all -> Int32 in
            let base = UnsafeRawPointer(all.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisFormatCommandArgv(&target, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
        }
        // Only fails when hiredis cannot allocate; the command is then left unwritten.
        guard length > 0, let target else { return }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}
