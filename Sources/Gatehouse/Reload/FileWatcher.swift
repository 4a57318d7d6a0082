import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Watches directories (and their subdirectories) with Linux inotify and calls `onChange` once
/// changes have settled for `debounce`: editors write a file in several steps, and one reload
/// per save is what an operator expects. No file system work happens per request.
final class FileWatcher: @unchecked Sendable {
    private let directories: [String]
    private let debounce: Duration
    private let onChange: @Sendable ([String]) -> Void
    private let fd: Int32
    private var watched: [Int32: String] = [:]
    private var thread: Thread?
    private let stopFlag = StopFlag()

    /// Fails (returns nil) when inotify is not available.
    init?(directories: [String], debounce: Duration = .milliseconds(100), onChange: @escaping @Sendable ([String]) -> Void) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.directories = directories
        self.debounce = debounce
        self.onChange = onChange
        addWatches()
    }

    deinit { close(fd) }

    private static let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_ATTRIB)

    /// Watches every directory below the roots (new subdirectories are picked up after a change).
    private func addWatches() {
        for root in directories {
            var stack = [root]
            while let dir = stack.popLast() {
                let wd = inotify_add_watch(fd, dir, Self.mask)
                if wd >= 0 { watched[wd] = dir }
                let children = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
                for child in children where !child.hasPrefix(".") || child == ".env" {
                    var isDir: ObjCBool = false
                    let path = dir + "/" + child
                    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { stack.append(path) }
                }
            }
        }
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "gatehouse-watcher"
        self.thread = thread
        thread.start()
    }

    func stop() { stopFlag.set() }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var changed: [String] = []
        var lastEvent: ContinuousClock.Instant?
        while !stopFlag.isSet {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 50)
            if ready > 0 {
                let n = read(fd, &buffer, buffer.count)
                if n > 0 {
                    changed.append(contentsOf: names(in: buffer[0..<n]))
                    lastEvent = .now
                }
            }
            if let last = lastEvent, ContinuousClock.now - last >= debounce {
                let batch = changed
                changed = []
                lastEvent = nil
                addWatches()
                onChange(batch)
            }
        }
    }

    /// File paths named by a batch of inotify events.
    private func names(in bytes: ArraySlice<UInt8>) -> [String] {
        var out: [String] = []
        var offset = bytes.startIndex
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= bytes.endIndex {
            let (wd, length) = bytes[offset..<(offset + header)].withUnsafeBytes { raw -> (Int32, Int) in
                let event = raw.loadUnaligned(as: inotify_event.self)
                return (event.wd, Int(event.len))
            }
            let nameBytes = bytes[(offset + header)..<min(offset + header + length, bytes.endIndex)].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            out.append((watched[wd] ?? "?") + (name.isEmpty ? "" : "/" + name))
            offset += header + length
        }
        return out
    }
}

private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
