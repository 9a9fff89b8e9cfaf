import NIOCore

/// Option codes a client sends during fixed newstyle negotiation.
public enum NBDOption: UInt32, Sendable, CustomStringConvertible {
    case exportName = 1
    case abort = 2
    case list = 3
    case startTLS = 5
    case info = 6
    case go = 7
    case structuredReply = 8
    case listMetaContext = 9
    case setMetaContext = 10

    public var description: String {
        switch self {
        case .exportName: return "NBD_OPT_EXPORT_NAME"
        case .abort: return "NBD_OPT_ABORT"
        case .list: return "NBD_OPT_LIST"
        case .startTLS: return "NBD_OPT_STARTTLS"
        case .info: return "NBD_OPT_INFO"
        case .go: return "NBD_OPT_GO"
        case .structuredReply: return "NBD_OPT_STRUCTURED_REPLY"
        case .listMetaContext: return "NBD_OPT_LIST_META_CONTEXT"
        case .setMetaContext: return "NBD_OPT_SET_META_CONTEXT"
        }
    }
}

/// Reply types a server sends to an option; error types have bit 31 set.
public enum NBDOptionReplyType {
    public static let ack: UInt32 = 1
    public static let server: UInt32 = 2
    public static let info: UInt32 = 3
    public static let metaContext: UInt32 = 4

    static let errorBit: UInt32 = 1 << 31

    /// The protocol's name for an option reply error type, for messages.
    static func errorName(_ type: UInt32) -> String {
        switch type {
        case errorBit | 1: return "NBD_REP_ERR_UNSUP"
        case errorBit | 2: return "NBD_REP_ERR_POLICY"
        case errorBit | 3: return "NBD_REP_ERR_INVALID"
        case errorBit | 4: return "NBD_REP_ERR_PLATFORM"
        case errorBit | 5: return "NBD_REP_ERR_TLS_REQD"
        case errorBit | 6: return "NBD_REP_ERR_UNKNOWN"
        case errorBit | 7: return "NBD_REP_ERR_SHUTDOWN"
        case errorBit | 8: return "NBD_REP_ERR_BLOCK_SIZE_REQD"
        case errorBit | 9: return "NBD_REP_ERR_TOO_BIG"
        default: return "error 0x\(String(type, radix: 16))"
        }
    }

    static let unsupported: UInt32 = errorBit | 1
    /// NBD_REP_ERR_POLICY: the server (or relay) will not do that.
    static let policy: UInt32 = errorBit | 2
    static let unknownExport: UInt32 = errorBit | 6
    static let tlsRequired: UInt32 = errorBit | 5
}

/// Information items in `NBD_REP_INFO` replies to `NBD_OPT_GO` and `NBD_OPT_INFO`.
enum NBDInfoType {
    static let export: UInt16 = 0
    static let name: UInt16 = 1
    static let description: UInt16 = 2
    static let blockSize: UInt16 = 3
}

/// Flags in the server's handshake and the client's reply to it.
enum NBDHandshakeFlags {
    static let fixedNewstyle: UInt16 = 1 << 0
    static let noZeroes: UInt16 = 1 << 1
}

extension NBDOption {
    /// The option request for option `code` carrying `data`, as it goes on the wire.
    static func request(code: UInt32, data: ByteBuffer = ByteBuffer()) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(16 + data.readableBytes)
        buffer.writeInteger(NBDMagic.optionRequest)
        buffer.writeInteger(code)
        buffer.writeInteger(UInt32(data.readableBytes))
        buffer.writeImmutableBuffer(data)
        return buffer
    }
}
