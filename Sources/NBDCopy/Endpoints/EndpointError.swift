import NBD

/// A failed request or connection, with a message that names the endpoint and offset, and
/// the errno when the server or the file gave one.
public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The server or file refused this request; the connection is still good.
        case request
        /// The connection is gone; its lane must stop, or reconnect (`--reconnect`).
        case connection
        /// The endpoint is gone for good or is no longer the same export (a captive server
        /// exited, the export changed across a reconnect): the copy must end.
        case fatal
    }

    public var kind: Kind
    public var message: String
    /// The NBD or POSIX error number (Linux numbering for both), when there is one.
    public var errno: NBDErrno?

    public init(_ kind: Kind, _ message: String, errno: NBDErrno? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    public var description: String { message }

    /// Error numbers a second try may get past: transient server or device trouble.
    /// Everything else (ENOSPC, EROFS, EPERM, EACCES, EINVAL, EFBIG, EOVERFLOW, ENOTSUP, or
    /// no number at all) means the same request will fail again, so it fails at once.
    static let transientErrnos: Set<NBDErrno> = [.eio, .eagain, .eintr, .eshutdown, .enomem, .etimedout]

    /// Whether `--retries` applies: a request error with a transient error number.
    public var mayPassOnRetry: Bool {
        guard kind == .request, let errno else { return false }
        return Self.transientErrnos.contains(errno)
    }
}
