import Dispatch
import FuzzSupport
import NBD

/// Fuzzes the client's handshake (`HandshakeReplay` has the input format).
@main
enum NBDHandshakeFuzzer {
    static func main() {
        FuzzerMain.run { input in
            // The fuzzer calls synchronously and the handshake is async: run it detached (not
            // on the main actor, whose thread this is) and wait here.
            let finished = DispatchSemaphore(value: 0)
            let report = ReportBox()
            Task.detached {
                let outcome = await HandshakeReplay.run(input)
                report.value = ReplayReport(summary: "\(outcome.result)", violations: outcome.violations)
                finished.signal()
            }
            finished.wait()
            return report.value!
        }
    }
}

/// Carries the report out of the task; the semaphore orders the write before the read.
private final class ReportBox: @unchecked Sendable {
    var value: ReplayReport?
}
