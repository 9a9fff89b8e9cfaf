#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations themes need, without Foundation.
enum FileSystem {
    /// The whole file as UTF-8 text (invalid bytes replaced); throws the system's reason.
    static func readText(_ path: String) throws(FileSystemError) -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw FileSystemError(reason: currentErrorText()) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystemError(reason: currentErrorText())
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > 1 << 20 { throw FileSystemError(reason: "larger than 1 MiB; not a theme file") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether anything exists at `path`.
    static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    /// Creates `path` and the folders above it that are missing (mode 0755); errors are
    /// left to the write that follows.
    static func makeDirectories(_ path: String) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            mkdir(partial, 0o755)
        }
    }

    /// Replaces the file at `path` with `text`: written to a temporary file next to it,
    /// then renamed, so a reader never sees half a file.
    static func writeText(_ text: String, to path: String) throws(FileSystemError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileSystemError(reason: currentErrorText()) }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = currentErrorText()
                close(descriptor)
                unlink(temporary)
                throw FileSystemError(reason: reason)
            }
            bytes = bytes.dropFirst(count)
        }
        guard close(descriptor) == 0, rename(temporary, path) == 0 else {
            let reason = currentErrorText()
            unlink(temporary)
            throw FileSystemError(reason: reason)
        }
    }

    /// Whether `path` names a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether `path` names a file that can be read.
    static func isReadableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR && access(path, R_OK) == 0
    }

    /// The names in a directory (without `.` and `..`); empty when it cannot be read.
    static func contents(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The running program's path (Linux: `/proc/self/exe`), nil when unknown.
    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments.first }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `a/b/c` → `a/b`; `c` → `.`.
    static func parent(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.last == "/" { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    private static func currentErrorText() -> String {
        String(cString: strerror(errno))
    }
}

/// Why a file operation failed, in the system's words.
public struct FileSystemError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The environment variables the dashboard reads.
public enum ProcessEnvironment {
    /// Names read by `current()`.
    public static let names = ["NO_COLOR", "COLORTERM", "TERM", "XDG_CONFIG_HOME", "HOME", "NBDTOP_THEMES_DIR"]

    /// The current values of `names` that are set.
    public static func current() -> [String: String] {
        var values: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { values[name] = String(cString: value) }
        }
        return values
    }

    /// The running program's path, nil when unknown.
    public static func executablePath() -> String? { FileSystem.executablePath() }
}
