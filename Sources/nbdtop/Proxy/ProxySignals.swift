import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Turns Ctrl-C, SIGTERM and SIGHUP into a call to `onStop` (the first one only), for the
/// proxy's session to end cleanly with 128 + the signal's number.
final class ProxySignals: @unchecked Sendable {
    // Dispatch sources are thread-safe but not marked Sendable; they are only cancelled.
    private var sources: [any DispatchSourceSignal] = []

    init(onStop: @escaping @Sendable (StopSignal) -> Void) {
        for stopSignal in StopSignal.allCases {
            signal(stopSignal.number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: stopSignal.number, queue: .global())
            source.setEventHandler { onStop(stopSignal) }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
