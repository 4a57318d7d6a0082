import Dispatch
import Foundation
import Glibc

/// The last line of defence for shutdown: once SIGTERM or SIGINT arrives, the process ends
/// `grace + margin` later even if something (a stuck event loop, a hung dependency) keeps the
/// graceful shutdown from finishing. Budgets make a stuck Lua loop impossible; this makes a
/// process that cannot be stopped without SIGKILL impossible whatever the cause.
///
/// It runs on Dispatch's own threads, never on an event loop or the Swift concurrency pool, so
/// nothing those are stuck in can delay it.
public final class ShutdownWatchdog: @unchecked Sendable {
    private let delay: Duration
    private let onExpiry: @Sendable () -> Void
    private var sources: [any DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "gatehouse.shutdown-watchdog")
    private var armed = false

    /// `onExpiry` runs `delay` after the first signal (or ``arm()``); the default writes a line
    /// to standard error and exits with status 1.
    public init(delay: Duration, onExpiry: (@Sendable () -> Void)? = nil) {
        self.delay = delay
        self.onExpiry = onExpiry ?? {
            let text = "gatehouse: shutdown did not finish within \(delay) of the signal; exiting\n"
            FileHandle.standardError.write(Data(text.utf8))
            _exit(1)
        }
    }

    /// Starts watching `signals` (SIGTERM and SIGINT, alongside the graceful shutdown, which
    /// handles them too). A Dispatch signal source only sees a signal whose default action is
    /// off, so that is set here rather than relied on from the service lifecycle's setup.
    public func watchSignals(_ signals: [Int32]? = nil) {
        for signal in signals ?? [SIGTERM, SIGINT] {
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
            source.setEventHandler { [weak self] in self?.arm() }
            source.resume()
            sources.append(source)
        }
    }

    /// Starts the countdown (once; later calls do nothing).
    public func arm() {
        queue.async { [self] in
            guard !armed else { return }
            armed = true
            let (seconds, attoseconds) = delay.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds), execute: onExpiry)
        }
    }
}
