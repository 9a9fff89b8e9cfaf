import Dispatch
import NBDCopy
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns signals into engine calls: Ctrl-C, SIGTERM and SIGHUP stop cleanly (`StopSignal`;
/// a second one of them exits at once), SIGUSR1 adds a lane, SIGUSR2 drops the newest
/// one. For scripts and tests.
///
/// A stop signal within `sameSignalWindow` of the first is that one delivered twice, not
/// a second: `timeout(1)` sends its signal to the command and then to its own process
/// group, which holds the command, and a script's `timeout 2h nbdtop copy` must stop
/// cleanly, not at once.
///
/// It watches from before the endpoints are opened: a stop asked for while they open is
/// remembered and stops the engine as soon as it is attached.
final class SignalWatcher: @unchecked Sendable {
    private struct State {
        var engine: CopyEngine?
        /// The first stop signal, which decides the exit status of a clean stop.
        var stopSignal: StopSignal?
        var firstStopAt: ContinuousClock.Instant?
        /// Takes SIGHUP instead of stopping, while set.
        var hangUpHandler: (@Sendable () -> Void)?
    }

    // Dispatch sources are thread-safe but not marked Sendable; they are only cancelled.
    private var sources: [any DispatchSourceSignal] = []
    private let state = Mutex(State())
    private let log: @Sendable (String) -> Void
    private let exitAtOnce: @Sendable (StopSignal) -> Never

    /// How soon after the first a stop signal is the same one again: `timeout(1)`'s two
    /// come microseconds apart, and no one presses Ctrl-C twice in a tenth of a second.
    static let sameSignalWindow: Duration = .milliseconds(100)

    /// `exitAtOnce` runs on a second stop signal, on a dispatch queue while the copy may
    /// still run, and ends the process.
    init(log: @escaping @Sendable (String) -> Void, exitAtOnce: @escaping @Sendable (StopSignal) -> Never) {
        self.log = log
        self.exitAtOnce = exitAtOnce
        for stopSignal in StopSignal.allCases {
            watch(stopSignal.number) { self.stop(stopSignal) }
        }
        watch(SIGUSR1) {
            log("SIGUSR1: adding a lane")
            if let engine = self.engine { Task { _ = try? await engine.addLane() } }
        }
        watch(SIGUSR2) {
            log("SIGUSR2: dropping the newest lane")
            if self.engine?.dropLane() == nil { log("cannot drop the last lane") }
        }
    }

    /// Handles `number` on a dispatch queue instead of its default action. Signals that
    /// arrive together come as one event.
    private func watch(_ number: Int32, _ handler: @escaping @Sendable () -> Void) {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        // The handler holds its source until `cancel()`, which releases both.
        source.setEventHandler { handler() }
        source.resume()
        sources.append(source)
    }

    private var engine: CopyEngine? { state.withLock { $0.engine } }

    /// The first stop signal received, if any.
    var stopSignal: StopSignal? { state.withLock { $0.stopSignal } }

    /// Lets signals reach `engine`; stops it at once if a stop signal came before.
    func attach(_ engine: CopyEngine) {
        let stopNow = state.withLock { state in
            state.engine = engine
            return state.stopSignal != nil
        }
        if stopNow { engine.stop() }
    }

    /// While `handler` is set, SIGHUP calls it once instead of stopping the copy (the
    /// dashboard's terminal went away: the copy goes on); a later SIGHUP stops as usual.
    func divertHangUp(_ handler: (@Sendable () -> Void)?) {
        state.withLock { $0.hangUpHandler = handler }
    }

    private func stop(_ stopSignal: StopSignal) {
        if stopSignal == .hangUp, let handler = state.withLock({ state in
            defer { state.hangUpHandler = nil }
            return state.hangUpHandler
        }) {
            handler()
            return
        }
        let now = ContinuousClock.now
        let (first, engine) = state.withLock { state in
            let first = state.firstStopAt
            if first == nil { (state.firstStopAt, state.stopSignal) = (now, stopSignal) }
            return (first, state.engine)
        }
        if let first {
            // Already stopping: the same signal twice is nothing new.
            guard now - first < Self.sameSignalWindow else { exitAtOnce(stopSignal) }
            return
        }
        let again = stopSignal == .interrupt ? "press Ctrl-C again" : "send \(stopSignal.name) again"
        log("\(stopSignal.stopped): finishing requests in flight, then stopping (\(again) to quit at once)")
        engine?.stop()
    }

    /// Stops watching (which also lets the handlers, and so this watcher, go). Signals
    /// keep being ignored: the copy has ended, so a late Ctrl-C must not kill the process
    /// while it writes its last lines.
    func cancel() {
        for source in sources { source.cancel() }
    }
}
