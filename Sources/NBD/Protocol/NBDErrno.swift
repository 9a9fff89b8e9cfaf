/// An error code from the server in a reply, as the protocol defines it.
///
/// The wire values are Linux errno numbers, but the protocol fixes them, so they are
/// named here instead of taken from the platform's headers.
public struct NBDErrno: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let eperm = Self(rawValue: 1)
    public static let eio = Self(rawValue: 5)
    public static let enomem = Self(rawValue: 12)
    public static let einval = Self(rawValue: 22)
    public static let enospc = Self(rawValue: 28)
    public static let eoverflow = Self(rawValue: 75)
    public static let enotsup = Self(rawValue: 95)
    public static let eshutdown = Self(rawValue: 108)

    /// The symbolic name, e.g. `EIO`.
    public var name: String {
        switch rawValue {
        case 1: return "EPERM"
        case 5: return "EIO"
        case 12: return "ENOMEM"
        case 22: return "EINVAL"
        case 28: return "ENOSPC"
        case 75: return "EOVERFLOW"
        case 95: return "ENOTSUP"
        case 108: return "ESHUTDOWN"
        default: return "error \(rawValue)"
        }
    }

    /// The name and a short explanation, e.g. `EIO (input/output error)`.
    public var description: String {
        switch rawValue {
        case 1: return "EPERM (operation not permitted)"
        case 5: return "EIO (input/output error)"
        case 12: return "ENOMEM (out of memory)"
        case 22: return "EINVAL (invalid argument)"
        case 28: return "ENOSPC (no space left on device)"
        case 75: return "EOVERFLOW (value too large)"
        case 95: return "ENOTSUP (operation not supported)"
        case 108: return "ESHUTDOWN (server is shutting down)"
        default: return name
        }
    }
}
