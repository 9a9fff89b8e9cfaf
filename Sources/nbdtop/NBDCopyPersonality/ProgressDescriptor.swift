import NBDCopy
import Synchronization

import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// `--progress=FD`: a line `N/100` on descriptor FD whenever the whole percent changes,
/// from `0/100` at the start to `100/100` once the copy has succeeded, for programs such
/// as virt-v2v that read it.
///
/// Each line goes out in one `write(2)`. Errors are ignored, as nbdcopy ignores them: a
/// reader that went away must not stop the copy (SIGPIPE is ignored, so it is EPIPE).
final class ProgressDescriptor: ProgressDisplay {
    let descriptor: Int32
    /// The percent written last.
    private let written = Mutex<Int?>(nil)

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    static func line(percent: Int) -> String { "\(percent)/100\n" }

    func start() {
        write(percent: 0)
    }

    func show(_ snapshot: CopySnapshot) {
        write(percent: NBDCopyProgress.percent(snapshot))
    }

    func finish(_ snapshot: CopySnapshot, succeeded: Bool) {
        if succeeded { write(percent: 100) }
    }

    private func write(percent: Int) {
        written.withLock { last in
            guard last != percent else { return }
            last = percent
            var bytes = Array(Self.line(percent: percent).utf8)
            _ = Glibc.write(descriptor, &bytes, bytes.count)
        }
    }
}
