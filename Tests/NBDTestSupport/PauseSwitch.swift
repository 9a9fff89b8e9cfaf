import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The control socket of nbdkit's pause filter: after `pause()` the server holds every
/// request it receives, so a client's requests in flight never finish (until the server
/// ends). Pass `argument` to nbdkit with `--filter=pause`.
public final class PauseSwitch: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let socketPath: String

    public init() throws {
        directory = try TemporaryDirectory(prefix: "nbdkit-pause")
        socketPath = directory.file("pause.sock")
    }

    deinit { remove() }

    /// `pause-control=SOCKET`, for the plugin arguments.
    public var argument: String { "pause-control=\(socketPath)" }

    /// Sends `p` and waits for the filter's `P`, which it sends once the requests it had
    /// already received are done.
    public func pause(timeout: Duration = .seconds(30)) throws {
        let fd = try UnixSocket.connect(to: socketPath)
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var command = UInt8(ascii: "p")
        guard send(fd, &command, 1, UnixSocket.noSignal) == 1 else {
            throw TestSupportError("cannot send p to \(socketPath): \(String(cString: strerror(errno)))")
        }
        var answer: UInt8 = 0
        guard recv(fd, &answer, 1, 0) == 1, answer == UInt8(ascii: "P") else {
            throw TestSupportError("the pause filter at \(socketPath) did not answer P")
        }
    }

    public func remove() {
        directory.remove()
    }
}
