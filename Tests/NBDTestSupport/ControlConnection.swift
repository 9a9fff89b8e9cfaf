import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client of a copy's control socket for tests: sends raw bytes or lines, reads lines
/// with a timeout. Closed in `close()`, which `deinit` also calls.
public final class ControlConnection: @unchecked Sendable {
    private var fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String) throws {
        fd = try UnixSocket.connect(to: path)
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends `bytes` whole; throws when the copy closed the connection.
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, UnixSocket.noSignal) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw TestSupportError("send failed: \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    public func send(line: String) throws { try send(Array((line + "\n").utf8)) }

    /// The next line (without its newline); nil at the end of the stream or after `timeout`.
    public func readLine(timeout: Duration = .seconds(30)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[0..<count]
        }
    }

    /// Reads lines until one satisfies `condition`; nil at the end of the stream or after
    /// `timeout`.
    public func readLine(timeout: Duration = .seconds(30), where condition: (String) -> Bool) -> String? {
        let deadline = ContinuousClock.now + timeout
        while let line = readLine(timeout: deadline - ContinuousClock.now) {
            if condition(line) { return line }
        }
        return nil
    }
}
