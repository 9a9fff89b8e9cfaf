import Control
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking Unix stream socket in plain POSIX calls, for a client polled from the
/// dashboard loop: connect, read what is there, write a short line.
enum UnixStreamSocket {
    /// What a read found.
    enum ReadResult {
        /// Bytes were appended, or none were waiting.
        case open
        /// The peer closed the connection.
        case closed
        case failed(String)
    }

    /// Connects to `path` (a Unix socket accepts at once or refuses) and makes the
    /// socket non-blocking.
    static func connect(to path: String) throws(ControlDirectoryError) -> Int32 {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else {
            throw ControlDirectoryError("\(path): the socket path is too long")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw ControlDirectoryError("socket: \(String(cString: strerror(errno)))") }
        let connected = address.withSockAddr { Glibc.connect(descriptor, $0, socklen_t($1)) }
        guard connected == 0, fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw ControlDirectoryError("\(path): \(reason)")
        }
        return descriptor
    }

    /// Appends every byte waiting on `descriptor` to `buffer`, without waiting.
    static func read(_ descriptor: Int32, into buffer: inout [UInt8]) -> ReadResult {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                return .closed
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return .open
            } else {
                return .failed(String(cString: strerror(errno)))
            }
        }
    }

    /// Writes `text` whole; nil when it went, else why not. Lines are short: a socket
    /// buffer that cannot take one is an error, not a reason to wait.
    static func write(_ descriptor: Int32, _ text: String) -> String? {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes = bytes.dropFirst(count)
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return count < 0 ? String(cString: strerror(errno)) : "nothing written"
            }
        }
        return nil
    }
}
