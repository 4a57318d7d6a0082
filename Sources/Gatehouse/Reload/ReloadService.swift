public import Logging
public import ServiceLifecycle
import UnixSignals

/// Triggers reloads: on file changes under the config and plugin directories (inotify) and on
/// SIGHUP. Runs until graceful shutdown.
public struct ReloadService: Service {
    let reloader: Reloader
    let directories: [String]
    let watch: Bool
    let logger: Logger

    public init(reloader: Reloader, directories: [String], watch: Bool = true, logger: Logger) {
        self.reloader = reloader
        self.directories = directories
        self.watch = watch
        self.logger = logger
    }

    public func run() async throws {
        let reloader = self.reloader
        var watcher: FileWatcher?
        if watch {
            watcher = FileWatcher(directories: directories) { paths in
                let shown = paths.prefix(3).joined(separator: ", ") + (paths.count > 3 ? ", …" : "")
                Task { await reloader.reload(reason: "changed: \(shown)") }
            }
            if let watcher {
                watcher.start()
            } else {
                logger.warning("inotify is not available: reload with SIGHUP or the admin endpoint")
            }
        }
        defer { watcher?.stop() }
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                await reloader.reload(reason: "SIGHUP")
            }
        } onGracefulShutdown: {}
    }
}
