import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// What a copy leaves next to its socket when it ends, `PID.result.json`: one JSON object
/// with its exit status, totals, per-connection figures and end time, so that `ls` can say
/// how copies that are gone ended. Kept for `lifetime`, then removed by the next `ls` or
/// copy that looks.
public enum ResultFile {
    public static let lifetime = Duration.seconds(24 * 3600)

    /// Writes `result` to `path` whole or not at all (a temporary file renamed over it),
    /// mode 0600.
    public static func write(_ result: JSONValue, to path: String) throws(ControlDirectoryError) {
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ControlDirectoryError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array((result.compact + "\n").utf8)
        var offset = 0
        var failure: Int32?
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                failure = written < 0 ? errno : EIO
                break
            }
            offset += written
        }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = errno }
        if let failure {
            unlink(temporary)
            throw ControlDirectoryError("cannot write \(path): \(String(cString: strerror(failure)))")
        }
    }

    /// Reads a result; nil when there is none or it is not a JSON object.
    public static func read(_ path: String) -> JSONValue? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count < 16 << 20 {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        guard let value = try? JSONValue.parse(bytes), case .object = value else { return nil }
        return value
    }

    /// Whether the file at `path` was written longer ago than `lifetime`.
    public static func isExpired(_ path: String, now: Double = WallClock.now()) -> Bool {
        var status = stat()
        guard lstat(path, &status) == 0 else { return false }
        let written = Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9
        return now - written > Double(lifetime.components.seconds)
    }
}

/// Seconds since the Unix epoch, for facts that outlive a process (`started`, `ended`).
public enum WallClock {
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
