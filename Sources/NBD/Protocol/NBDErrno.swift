/// An error code from the server in a reply, as the protocol defines it.
///
/// The wire values are Linux errno numbers, but the protocol fixes them, so they are
/// named here instead of taken from the platform's headers. Servers send only the
/// protocol's few codes; the others here are POSIX codes that local files report with the
/// same Linux numbers, so one type names both.
public struct NBDErrno: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let eperm = Self(rawValue: 1)
    public static let eintr = Self(rawValue: 4)
    public static let eio = Self(rawValue: 5)
    public static let eagain = Self(rawValue: 11)
    public static let enomem = Self(rawValue: 12)
    public static let eacces = Self(rawValue: 13)
    public static let einval = Self(rawValue: 22)
    public static let efbig = Self(rawValue: 27)
    public static let enospc = Self(rawValue: 28)
    public static let erofs = Self(rawValue: 30)
    public static let eoverflow = Self(rawValue: 75)
    public static let enotsup = Self(rawValue: 95)
    public static let eshutdown = Self(rawValue: 108)
    public static let etimedout = Self(rawValue: 110)

    private static let names: [UInt32: (name: String, meaning: String)] = [
        1: ("EPERM", "operation not permitted"),
        4: ("EINTR", "interrupted system call"),
        5: ("EIO", "input/output error"),
        11: ("EAGAIN", "resource temporarily unavailable"),
        12: ("ENOMEM", "out of memory"),
        13: ("EACCES", "permission denied"),
        22: ("EINVAL", "invalid argument"),
        27: ("EFBIG", "file too large"),
        28: ("ENOSPC", "no space left on device"),
        30: ("EROFS", "read-only file system"),
        75: ("EOVERFLOW", "value too large"),
        95: ("ENOTSUP", "operation not supported"),
        108: ("ESHUTDOWN", "server is shutting down"),
        110: ("ETIMEDOUT", "timed out"),
    ]

    /// The symbolic name, e.g. `EIO`.
    public var name: String { Self.names[rawValue]?.name ?? "error \(rawValue)" }

    /// The name to count errors under: the symbolic name, or `other` for a value the
    /// protocol does not define, so that a server sending ever new values cannot grow a
    /// table (or the metrics' label sets) without bound.
    public var tallyName: String { Self.names[rawValue]?.name ?? "other" }

    /// The name and a short explanation, e.g. `EIO (input/output error)`.
    public var description: String {
        guard let known = Self.names[rawValue] else { return name }
        return "\(known.name) (\(known.meaning))"
    }
}
