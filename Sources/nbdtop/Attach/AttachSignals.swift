import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// While attached: Ctrl-C, SIGTERM and SIGHUP end the dashboard (the copy, another
/// process, goes on). SIGHUP means the terminal went away, so it is not written to.
final class AttachSignals: @unchecked Sendable {
    /// Set by the first of the signals; the dashboard loop watches it.
    let received = Atomic<Bool>(false)
    private let number = Atomic<Int32>(0)
    // Dispatch sources are thread-safe but not marked Sendable; they are only cancelled.
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                _ = number.compareExchange(expected: 0, desired: signalNumber, ordering: .relaxed)
                received.store(true, ordering: .releasing)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal received; 0 when none was.
    var signalNumber: Int32 { number.load(ordering: .relaxed) }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
