#if canImport(Glibc)
import Glibc
#endif

/// The private folder where copies keep their control sockets and results:
/// `$XDG_RUNTIME_DIR/nbdtop`, or `/tmp/nbdtop-UID` when `XDG_RUNTIME_DIR` is unset.
///
/// Anyone who can write to the folder could put a socket of their own in place of a copy's,
/// so it must be ours and writable by nobody else: created with mode 0700, and refused (with
/// the reason) when it exists with another owner, group or world write permission, or is not
/// a plain folder (a symbolic link is refused too).
public struct ControlDirectory: Sendable, Equatable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// The default folder for this user and environment.
    public static var standard: ControlDirectory {
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !runtime.isEmpty {
            return ControlDirectory(path: runtime + "/nbdtop")
        }
        return ControlDirectory(path: "/tmp/nbdtop-\(getuid())")
    }

    /// `PID.sock`.
    public func socketPath(pid: pid_t) -> String { "\(path)/\(pid).sock" }

    /// `PID.result.json`.
    public func resultPath(pid: pid_t) -> String { "\(path)/\(pid).result.json" }

    /// Creates the folder (mode 0700) if it is missing, then checks it.
    public func prepare() throws(ControlDirectoryError) {
        if mkdir(path, 0o700) == 0 {
            // mkdir applies the umask; say exactly what the folder allows.
            _ = chmod(path, 0o700)
        } else if errno != EEXIST {
            throw ControlDirectoryError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        try check()
    }

    /// Whether the folder exists; throws when it exists but may not be trusted.
    public func existsAndIsTrusted() throws(ControlDirectoryError) -> Bool {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return false }
            throw ControlDirectoryError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        try check()
        return true
    }

    /// Refuses a folder that is not a plain folder owned by us and writable by us alone.
    private func check() throws(ControlDirectoryError) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            throw ControlDirectoryError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw ControlDirectoryError("\(path) is not a folder")
        }
        guard status.st_uid == getuid() else {
            throw ControlDirectoryError("\(path) belongs to uid \(status.st_uid), not to uid \(getuid())")
        }
        let mode = status.st_mode & 0o777
        guard mode & 0o022 == 0 else {
            throw ControlDirectoryError("\(path) is writable by others (mode \(String(mode, radix: 8))); it must be 0700")
        }
    }

    /// The pids that have a socket or a result in the folder, in ascending order.
    public func pids() -> [pid_t] {
        guard let folder = opendir(path) else { return [] }
        defer { closedir(folder) }
        var found = Set<pid_t>()
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            for suffix in [".sock", ".result.json"] where name.hasSuffix(suffix) {
                if let pid = pid_t(name.dropLast(suffix.count)), pid > 0 { found.insert(pid) }
            }
        }
        return found.sorted()
    }
}

/// Why the control folder or socket cannot be used.
public struct ControlDirectoryError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
