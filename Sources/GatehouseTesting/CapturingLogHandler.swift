public import Logging
import NIOConcurrencyHelpers

/// Keeps every log record so tests can assert on what the gateway logged.
public final class LogCapture: Sendable {
    public struct Record: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private let records = NIOLockedValueBox<[Record]>([])

    public init() {}

    public var all: [Record] { records.withLockedValue { $0 } }

    /// A logger writing into this capture.
    public func logger(label: String = "gatehouse.test") -> Logger {
        Logger(label: label) { _ in CapturingLogHandler(capture: self) }
    }

    func append(_ record: Record) { records.withLockedValue { $0.append(record) } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged: [String: String] = [:]
        for (k, v) in metadata { merged[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { merged[k] = "\(v)" }
        capture.append(.init(level: event.level, message: "\(event.message)", metadata: merged))
    }
}
