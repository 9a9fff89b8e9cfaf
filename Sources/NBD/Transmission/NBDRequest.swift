import NIOCore

/// One transmission request, as the caller describes it.
public struct NBDRequest: Sendable {
    public var type: NBDCommandType
    public var flags: NBDCommandFlags
    public var offset: UInt64
    /// Bytes covered by the request; for WRITE, the payload's size.
    public var length: UInt32
    /// The data of a WRITE, in one or more pieces sent back to back (empty for other
    /// commands). Pieces let a copy write READ reply slices as they came, without
    /// gathering them into one buffer first.
    public var payload: [ByteBuffer]

    public init(type: NBDCommandType, flags: NBDCommandFlags = [], offset: UInt64 = 0, length: UInt32 = 0, payload: [ByteBuffer] = []) {
        self.type = type
        self.flags = flags
        self.offset = offset
        self.length = length
        self.payload = payload
    }

    public static func read(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) -> Self {
        Self(type: .read, flags: flags, offset: offset, length: length)
    }

    public static func write(_ data: ByteBuffer, at offset: UInt64, flags: NBDCommandFlags = []) -> Self {
        Self(type: .write, flags: flags, offset: offset, length: UInt32(truncatingIfNeeded: data.readableBytes), payload: [data])
    }

    /// A WRITE whose data is `pieces` in order.
    public static func write(pieces: [ByteBuffer], at offset: UInt64, flags: NBDCommandFlags = []) -> Self {
        let length = pieces.reduce(0) { $0 + $1.readableBytes }
        return Self(type: .write, flags: flags, offset: offset, length: UInt32(truncatingIfNeeded: length), payload: pieces)
    }

    public static func writeZeroes(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) -> Self {
        Self(type: .writeZeroes, flags: flags, offset: offset, length: length)
    }

    public static func trim(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) -> Self {
        Self(type: .trim, flags: flags, offset: offset, length: length)
    }

    public static func blockStatus(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) -> Self {
        Self(type: .blockStatus, flags: flags, offset: offset, length: length)
    }

    public static var flush: Self { Self(type: .flush) }

    /// Writes the 28-byte request header for this request with `cookie` into `buffer`.
    func writeHeader(cookie: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeInteger(NBDMagic.request)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(cookie)
        buffer.writeInteger(offset)
        buffer.writeInteger(length)
    }

    static let headerSize = 28
}

/// A piece of a reply, handed to the request's chunk handler as it arrives.
public enum NBDReplyChunk: Sendable {
    /// Bytes of a READ at `offset`: a slice of the receive buffer, not a copy.
    case data(offset: UInt64, bytes: ByteBuffer)
    /// A range of a READ that reads as zeroes.
    case hole(offset: UInt64, length: UInt32)
    /// `base:allocation` extents answering BLOCK_STATUS, in order from the request's offset.
    case extents([NBDExtent])
}

/// One extent of a `base:allocation` block status reply.
public struct NBDExtent: Sendable, Equatable {
    public var length: UInt32
    /// `NBD_STATE_HOLE` and `NBD_STATE_ZERO` bits.
    public var flags: UInt32

    public init(length: UInt32, flags: UInt32) {
        self.length = length
        self.flags = flags
    }

    public var isHole: Bool { flags & NBDMetaContext.stateHole != 0 }
    public var readsAsZero: Bool { flags & NBDMetaContext.stateZero != 0 }
}
