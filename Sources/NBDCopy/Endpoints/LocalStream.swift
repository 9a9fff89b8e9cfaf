import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

extension PipeEndpoint {
    /// Opens `path` as a stream when it names something that can only be read or written
    /// in order: a character device (`/dev/null`, `/dev/zero`, a terminal) or a FIFO, as
    /// nbdcopy does with any local path that is neither a regular file nor a block device.
    /// Returns nil for anything else (a missing path included), which is then opened as a
    /// file.
    ///
    /// A stream source has no known size: `/dev/zero` reads zeroes without end, so a copy
    /// from it ends when the destination refuses bytes past its end (or never, into
    /// `/dev/null`). Opening a FIFO waits until its other end is opened, as `open(2)` does.
    /// The descriptor is closed by `close()`.
    public static func openStream(path: String, direction: Direction, size: UInt64?,
                                  threadPool: NIOThreadPool = .singleton) throws(EndpointError) -> PipeEndpoint? {
        var status = stat()
        guard stat(path, &status) == 0, Self.isStream(status) else { return nil }
        let flags = (direction == .source ? O_RDONLY : O_WRONLY) | O_CLOEXEC | O_NOCTTY
        let fd = open(path, flags)
        guard fd >= 0 else {
            let what = direction == .source ? "reading" : "writing"
            throw EndpointError(.connection, "\(path): cannot open for \(what): \(systemErrorText(errno))")
        }
        // The path may have been replaced between stat and open.
        guard fstat(fd, &status) == 0, Self.isStream(status) else {
            Glibc.close(fd)
            throw EndpointError(.connection, "\(path): changed while it was being opened")
        }
        switch direction {
        case .source:
            return PipeEndpoint(readingFrom: fd, name: path, closesDescriptor: true, threadPool: threadPool)
        case .destination:
            return PipeEndpoint(writingTo: fd, size: size, name: path, closesDescriptor: true, threadPool: threadPool)
        }
    }

    private static func isStream(_ status: stat) -> Bool {
        let type = status.st_mode & S_IFMT
        return type == S_IFCHR || type == S_IFIFO
    }
}
