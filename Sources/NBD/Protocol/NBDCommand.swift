/// Transmission command types.
public enum NBDCommandType: UInt16, Sendable, CustomStringConvertible {
    case read = 0
    case write = 1
    case disconnect = 2
    case flush = 3
    case trim = 4
    case cache = 5
    case writeZeroes = 6
    case blockStatus = 7

    public var description: String {
        switch self {
        case .read: return "READ"
        case .write: return "WRITE"
        case .disconnect: return "DISC"
        case .flush: return "FLUSH"
        case .trim: return "TRIM"
        case .cache: return "CACHE"
        case .writeZeroes: return "WRITE_ZEROES"
        case .blockStatus: return "BLOCK_STATUS"
        }
    }
}

/// Flags a client may set on a transmission command.
public struct NBDCommandFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Force unit access: the write is durable when the reply arrives.
    public static let fua = Self(rawValue: 1 << 0)
    /// WRITE_ZEROES must allocate rather than punch a hole.
    public static let noHole = Self(rawValue: 1 << 1)
    /// READ must be answered with a single data chunk.
    public static let dontFragment = Self(rawValue: 1 << 2)
    /// BLOCK_STATUS should answer one extent only.
    public static let requestOne = Self(rawValue: 1 << 3)
    /// WRITE_ZEROES fails fast with ENOTSUP unless zeroing is cheap.
    public static let fastZero = Self(rawValue: 1 << 4)
}

/// Structured reply chunk types.
enum NBDChunkType {
    static let none: UInt16 = 0
    static let offsetData: UInt16 = 1
    static let offsetHole: UInt16 = 2
    static let blockStatus: UInt16 = 5
    static let error: UInt16 = (1 << 15) + 1
    static let errorOffset: UInt16 = (1 << 15) + 2

    static let errorBit: UInt16 = 1 << 15
    static let flagDone: UInt16 = 1 << 0
}

/// The metadata context nbdtop asks for: which ranges are holes and which read as zero.
public enum NBDMetaContext {
    public static let baseAllocation = "base:allocation"
    /// `base:allocation` extent flag: the range is not allocated.
    public static let stateHole: UInt32 = 1 << 0
    /// `base:allocation` extent flag: the range reads as zeroes.
    public static let stateZero: UInt32 = 1 << 1
}
