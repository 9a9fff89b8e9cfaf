#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor we write whole lines to, unbuffered, so each line lands at once.
final class OutputFile: @unchecked Sendable {
    private let descriptor: Int32
    private let ownsDescriptor: Bool

    static let standardOutput = OutputFile(descriptor: 1, owns: false)
    static let standardError = OutputFile(descriptor: 2, owns: false)

    private init(descriptor: Int32, owns: Bool) {
        self.descriptor = descriptor
        self.ownsDescriptor = owns
    }

    /// Opens `path` for writing (created or truncated); `-` is standard output.
    static func open(_ path: String) throws(OutputFileError) -> OutputFile {
        if path == "-" { return .standardOutput }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        return OutputFile(descriptor: fd, owns: true)
    }

    /// Whether this is a terminal.
    var isTerminal: Bool { isatty(descriptor) == 1 }

    /// Writes `text` completely (retrying short writes).
    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }

    func writeLine(_ line: String) { write(line + "\n") }

    func close() {
        if ownsDescriptor { _ = Glibc.close(descriptor) }
    }
}

struct OutputFileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
