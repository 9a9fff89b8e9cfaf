import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor we write whole lines to, unbuffered, so each line lands at once.
///
/// Writers are serialized, so lines from several tasks never interleave. A stream opened
/// with `open(_:as:)` reports its first write error once on stderr, naming the stream, and
/// drops what is written after it: a full disk or a closed pipe must not stop the copy.
final class OutputFile: Sendable {
    private struct State {
        /// No more lines: a write failed, the last line was written, or it was closed.
        var ended = false
        var closed = false
    }

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    /// How the one message about a write error names the stream; nil reports none (there
    /// is nowhere to report a failing stderr).
    private let name: String?
    private let state = Mutex(State())

    static let standardOutput = OutputFile(descriptor: 1, owns: false, name: nil)
    static let standardError = OutputFile(descriptor: 2, owns: false, name: nil)

    private init(descriptor: Int32, owns: Bool, name: String?) {
        self.descriptor = descriptor
        self.ownsDescriptor = owns
        self.name = name
    }

    /// Opens `path` for writing (created or truncated); `-` is standard output. `option`
    /// (such as `--stats-json`) names the stream in the message about a write error.
    static func open(_ path: String, as option: String) throws(OutputFileError) -> OutputFile {
        if path == "-" { return OutputFile(descriptor: 1, owns: false, name: "\(option) - (standard output)") }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        return OutputFile(descriptor: fd, owns: true, name: "\(option) \(path)")
    }

    /// Whether this is a terminal.
    var isTerminal: Bool { isatty(descriptor) == 1 }

    /// Writes `text` completely (retrying short writes), unless the stream has ended.
    func write(_ text: String) {
        write(text, last: false)
    }

    func writeLine(_ line: String) { write(line + "\n") }

    /// Writes `line` as the stream's last line: nothing written later lands after it.
    /// Only the first call writes.
    func writeLastLine(_ line: String) {
        write(line + "\n", last: true)
    }

    private func write(_ text: String, last: Bool) {
        let failure: Int32? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = last
            let error = writeAll(text)
            // A named stream stops at its first error, so it is reported once; stdout and
            // stderr keep trying, line by line, as before.
            if error != nil && name != nil { state.ended = true }
            return error
        }
        if let failure, let name {
            printError("nbdtop: \(name): cannot write: \(String(cString: strerror(failure))); no more lines go there")
        }
    }

    /// Writes every byte of `text`; returns errno when a write fails.
    private func writeAll(_ text: String) -> Int32? {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written < 0 { return errno }
            // write(2) returns 0 only for a count of 0; never loop on it.
            if written == 0 { return EIO }
            offset += written
        }
        return nil
    }

    /// Ends the stream; closes the descriptor if this opened it.
    func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.ended = true
            state.closed = true
            if ownsDescriptor { _ = Glibc.close(descriptor) }
        }
    }
}

struct OutputFileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
