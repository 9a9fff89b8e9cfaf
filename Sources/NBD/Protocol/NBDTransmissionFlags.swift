/// The per-export transmission flags a server advertises at the end of negotiation.
public struct NBDTransmissionFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let hasFlags = Self(rawValue: 1 << 0)
    public static let readOnly = Self(rawValue: 1 << 1)
    public static let sendFlush = Self(rawValue: 1 << 2)
    public static let sendFUA = Self(rawValue: 1 << 3)
    public static let rotational = Self(rawValue: 1 << 4)
    public static let sendTrim = Self(rawValue: 1 << 5)
    public static let sendWriteZeroes = Self(rawValue: 1 << 6)
    public static let sendDF = Self(rawValue: 1 << 7)
    public static let canMultiConn = Self(rawValue: 1 << 8)
    public static let sendResize = Self(rawValue: 1 << 9)
    public static let sendCache = Self(rawValue: 1 << 10)
    public static let sendFastZero = Self(rawValue: 1 << 11)

    /// Every known flag with its protocol name, in bit order.
    public static let named: [(flag: NBDTransmissionFlags, name: String)] = [
        (.hasFlags, "HAS_FLAGS"), (.readOnly, "READ_ONLY"), (.sendFlush, "SEND_FLUSH"),
        (.sendFUA, "SEND_FUA"), (.rotational, "ROTATIONAL"), (.sendTrim, "SEND_TRIM"),
        (.sendWriteZeroes, "SEND_WRITE_ZEROES"), (.sendDF, "SEND_DF"),
        (.canMultiConn, "CAN_MULTI_CONN"), (.sendResize, "SEND_RESIZE"),
        (.sendCache, "SEND_CACHE"), (.sendFastZero, "SEND_FAST_ZERO"),
    ]

    /// The names of the flags that are set, unknown bits as hex.
    public var names: [String] {
        var result = Self.named.filter { contains($0.flag) }.map(\.name)
        let known = Self.named.reduce(into: UInt16(0)) { $0 |= $1.flag.rawValue }
        let unknown = rawValue & ~known
        if unknown != 0 { result.append("0x" + String(unknown, radix: 16)) }
        return result
    }
}
