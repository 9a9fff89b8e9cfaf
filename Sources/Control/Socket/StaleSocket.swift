import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Socket files left behind by processes that are gone.
///
/// A Unix-domain socket file outlives the process that bound it (it may have been killed).
/// Such a file answers no connection, so it is safe to remove; one that answers belongs to
/// a live process and is left alone.
public enum StaleSocket {
    /// Removes `path` when it is a socket nobody listens on; does nothing when there is no
    /// file; throws when a live process answers there or the file is not a socket.
    public static func removeIfUnanswered(_ path: String) throws(ControlDirectoryError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlDirectoryError("\(path) exists and is not a socket")
        }
        if answers(path) { throw ControlDirectoryError("\(path) is in use by another process") }
        unlink(path)
    }

    /// Whether a process accepts connections at `path`. (Connecting to a Unix-domain socket
    /// succeeds or fails at once, so this does not wait.)
    public static func answers(_ path: String) -> Bool {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let connected = address.withSockAddr { connect(fd, $0, socklen_t($1)) }
        return connected == 0
    }
}
