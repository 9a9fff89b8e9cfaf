import Dispatch
import NBDCopy
#if canImport(Glibc)
import Glibc
#endif

/// Turns signals into engine calls: Ctrl-C and SIGTERM stop cleanly (a second one exits at
/// once), SIGUSR1 adds a lane, SIGUSR2 drops the newest one. For scripts and tests.
final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    init(engine: CopyEngine, log: @escaping @Sendable (String) -> Void) {
        let interrupts = InterruptCounter()
        var sources: [any DispatchSourceSignal] = []
        let handlers: [(Int32, @Sendable () -> Void)] = [
            (SIGINT, { Self.interrupt(engine, interrupts, log) }),
            (SIGTERM, { Self.interrupt(engine, interrupts, log) }),
            (SIGUSR1, {
                log("SIGUSR1: adding a lane")
                Task { _ = try? await engine.addLane() }
            }),
            (SIGUSR2, {
                log("SIGUSR2: dropping the newest lane")
                if engine.dropLane() == nil { log("cannot drop the last lane") }
            }),
        ]
        for (number, handler) in handlers {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    private static func interrupt(_ engine: CopyEngine, _ counter: InterruptCounter, _ log: @Sendable (String) -> Void) {
        if counter.increment() > 1 {
            log("interrupted again: exiting at once")
            exit(130)
        }
        log("interrupted: finishing requests in flight, then stopping (press Ctrl-C again to quit at once)")
        engine.stop()
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

/// Counts interrupts across signal handler invocations.
private final class InterruptCounter: @unchecked Sendable {
    private var count = 0
    private let queue = DispatchQueue(label: "nbdtop.interrupts")
    func increment() -> Int { queue.sync { count += 1; return count } }
}
