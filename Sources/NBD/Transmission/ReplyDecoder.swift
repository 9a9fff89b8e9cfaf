import NIOCore

/// Decodes simple and structured replies from the byte stream, one event at a time.
///
/// The decoder is pure: it never calls back and owns no requests. It is told what each
/// cookie asked for (`RequestShape`) so that it can check every length, offset and chunk
/// type *before* it waits for or keeps any bytes; a hostile server can therefore neither
/// crash us nor make us buffer more than `maximumBufferedChunk` bytes. READ payloads are
/// not buffered at all: they come out as slices of whatever the socket delivered.
struct ReplyDecoder {
    /// What the decoder needs to know about a request to check its reply.
    struct RequestShape {
        var type: NBDCommandType
        var offset: UInt64
        var length: UInt32
    }

    /// What one step of decoding found.
    enum Event {
        /// A piece of the reply to `cookie`.
        case chunk(cookie: UInt64, NBDReplyChunk)
        /// The server reported an error for `cookie`; `done` still follows.
        case error(cookie: UInt64, errno: NBDErrno, message: String, offset: UInt64?)
        /// The reply to `cookie` is complete.
        case done(cookie: UInt64)
    }

    private enum State {
        case header
        case simpleReadPayload(cookie: UInt64, remaining: Int, nextOffset: UInt64)
        case dataChunkOffset(cookie: UInt64, flags: UInt16, dataLength: Int, request: RequestShape)
        case dataChunkPayload(cookie: UInt64, flags: UInt16, remaining: Int, nextOffset: UInt64)
        case chunkBody(cookie: UInt64, flags: UInt16, type: UInt16, length: Int)
        case finishChunk(cookie: UInt64, flags: UInt16)
    }

    private var state = State.header
    /// The `base:allocation` context id; extents for other contexts are ignored.
    var baseAllocationContextID: UInt32?
    /// Whether structured replies were negotiated; without them a chunk is a violation.
    var structuredReplies = true

    /// The longest error message the protocol allows.
    static let maximumErrorMessage = 4096
    /// Largest block status chunk we keep (131072 extents).
    static let maximumBlockStatusChunk = 4 + 8 * 131_072
    static let maximumBufferedChunk = maximumBlockStatusChunk

    static let simpleHeaderSize = 16
    static let structuredHeaderSize = 20

    /// Whether the decoder is between replies (no reply partly read).
    var isIdle: Bool {
        if case .header = state { return true }
        return false
    }

    /// Decodes the next event from `buffer`, or returns nil when more bytes are needed.
    mutating func next(from buffer: inout ByteBuffer, lookup: (UInt64) -> RequestShape?) throws(NBDError) -> Event? {
        while true {
            switch state {
            case .header:
                guard let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
                switch magic {
                case NBDMagic.simpleReply:
                    guard buffer.readableBytes >= Self.simpleHeaderSize else { return nil }
                    if let event = try decodeSimpleHeader(&buffer, lookup: lookup) { return event }
                case NBDMagic.structuredReply:
                    guard structuredReplies else {
                        throw .protocolViolation("structured reply chunk, but structured replies were not negotiated")
                    }
                    guard buffer.readableBytes >= Self.structuredHeaderSize else { return nil }
                    if let event = try decodeStructuredHeader(&buffer, lookup: lookup) { return event }
                default:
                    throw .protocolViolation("reply has wrong magic 0x\(String(magic, radix: 16))")
                }

            case .simpleReadPayload(let cookie, let remaining, let nextOffset):
                guard buffer.readableBytes > 0 else { return nil }
                let count = min(remaining, buffer.readableBytes)
                let bytes = buffer.readSlice(length: count)!
                if count == remaining {
                    state = .finishChunk(cookie: cookie, flags: NBDChunkType.flagDone)
                } else {
                    state = .simpleReadPayload(cookie: cookie, remaining: remaining - count, nextOffset: nextOffset + UInt64(count))
                }
                return .chunk(cookie: cookie, .data(offset: nextOffset, bytes: bytes))

            case .dataChunkOffset(let cookie, let flags, let dataLength, let request):
                guard let offset = buffer.readInteger(as: UInt64.self) else { return nil }
                let end = request.offset + UInt64(request.length)
                guard offset >= request.offset, offset <= end, UInt64(dataLength) <= end - offset else {
                    throw .protocolViolation("READ reply carries \(dataLength) bytes at offset \(offset), outside the \(request.length) bytes asked for at \(request.offset)")
                }
                state = .dataChunkPayload(cookie: cookie, flags: flags, remaining: dataLength, nextOffset: offset)

            case .dataChunkPayload(let cookie, let flags, let remaining, let nextOffset):
                guard buffer.readableBytes > 0 else { return nil }
                let count = min(remaining, buffer.readableBytes)
                let bytes = buffer.readSlice(length: count)!
                if count == remaining {
                    state = .finishChunk(cookie: cookie, flags: flags)
                } else {
                    state = .dataChunkPayload(cookie: cookie, flags: flags, remaining: remaining - count, nextOffset: nextOffset + UInt64(count))
                }
                return .chunk(cookie: cookie, .data(offset: nextOffset, bytes: bytes))

            case .chunkBody(let cookie, let flags, let type, let length):
                guard var body = buffer.readSlice(length: length) else { return nil }
                state = .finishChunk(cookie: cookie, flags: flags)
                if let event = try decodeChunkBody(&body, cookie: cookie, flags: flags, type: type, lookup: lookup) {
                    return event
                }

            case .finishChunk(let cookie, let flags):
                state = .header
                if flags & NBDChunkType.flagDone != 0 { return .done(cookie: cookie) }
            }
        }
    }

    private mutating func decodeSimpleHeader(_ buffer: inout ByteBuffer, lookup: (UInt64) -> RequestShape?) throws(NBDError) -> Event? {
        let (_, error, cookie) = buffer.readMultipleIntegers(as: (UInt32, UInt32, UInt64).self)!
        guard let request = lookup(cookie) else {
            throw .protocolViolation("simple reply for unknown cookie \(cookie)")
        }
        if error != 0 {
            state = .finishChunk(cookie: cookie, flags: NBDChunkType.flagDone)
            return .error(cookie: cookie, errno: NBDErrno(rawValue: error), message: "", offset: nil)
        }
        if request.type == .read && request.length > 0 {
            state = .simpleReadPayload(cookie: cookie, remaining: Int(request.length), nextOffset: request.offset)
            return nil
        }
        state = .header
        return .done(cookie: cookie)
    }

    private mutating func decodeStructuredHeader(_ buffer: inout ByteBuffer, lookup: (UInt64) -> RequestShape?) throws(NBDError) -> Event? {
        let (_, flags, type, cookie, length32) = buffer.readMultipleIntegers(as: (UInt32, UInt16, UInt16, UInt64, UInt32).self)!
        let length = Int(length32)
        guard let request = lookup(cookie) else {
            throw .protocolViolation("structured reply chunk for unknown cookie \(cookie)")
        }
        func violation(_ what: String) -> NBDError {
            .protocolViolation("\(what) (chunk type \(type), length \(length), answering \(request.type) of \(request.length) bytes at \(request.offset))")
        }
        switch type {
        case NBDChunkType.none:
            guard length == 0 else { throw violation("NBD_REPLY_TYPE_NONE with a payload") }
            guard flags & NBDChunkType.flagDone != 0 else { throw violation("NBD_REPLY_TYPE_NONE without the DONE flag") }
            state = .finishChunk(cookie: cookie, flags: flags)
        case NBDChunkType.offsetData:
            guard request.type == .read else { throw violation("data chunk for a command that is not READ") }
            guard length > 8 else { throw violation("data chunk too short") }
            guard length - 8 <= Int(request.length) else { throw violation("data chunk longer than the READ asked for") }
            state = .dataChunkOffset(cookie: cookie, flags: flags, dataLength: length - 8, request: request)
        case NBDChunkType.offsetHole:
            guard request.type == .read else { throw violation("hole chunk for a command that is not READ") }
            guard length == 12 else { throw violation("hole chunk of wrong length") }
            state = .chunkBody(cookie: cookie, flags: flags, type: type, length: length)
        case NBDChunkType.blockStatus:
            guard request.type == .blockStatus else { throw violation("block status chunk for a command that is not BLOCK_STATUS") }
            guard length >= 12, (length - 4) % 8 == 0 else { throw violation("block status chunk of malformed length") }
            guard length <= Self.maximumBlockStatusChunk else { throw violation("block status chunk too large") }
            state = .chunkBody(cookie: cookie, flags: flags, type: type, length: length)
        default:
            guard type & NBDChunkType.errorBit != 0 else { throw violation("unknown chunk type") }
            guard length >= 6 else { throw violation("error chunk too short") }
            guard length <= 6 + Self.maximumErrorMessage + 8 else { throw violation("error chunk too large") }
            state = .chunkBody(cookie: cookie, flags: flags, type: type, length: length)
        }
        return nil
    }

    private func decodeChunkBody(_ body: inout ByteBuffer, cookie: UInt64, flags: UInt16, type: UInt16, lookup: (UInt64) -> RequestShape?) throws(NBDError) -> Event? {
        guard let request = lookup(cookie) else {
            throw .protocolViolation("structured reply chunk for unknown cookie \(cookie)")
        }
        switch type {
        case NBDChunkType.offsetHole:
            let (offset, holeLength) = body.readMultipleIntegers(as: (UInt64, UInt32).self)!
            let end = request.offset + UInt64(request.length)
            guard holeLength > 0, offset >= request.offset, offset <= end, UInt64(holeLength) <= end - offset else {
                throw .protocolViolation("READ reply has a hole of \(holeLength) bytes at \(offset), outside the \(request.length) bytes asked for at \(request.offset)")
            }
            return .chunk(cookie: cookie, .hole(offset: offset, length: holeLength))

        case NBDChunkType.blockStatus:
            let contextID = body.readInteger(as: UInt32.self)!
            guard contextID == baseAllocationContextID else { return nil }
            var extents: [NBDExtent] = []
            extents.reserveCapacity(body.readableBytes / 8)
            while let (length, extentFlags) = body.readMultipleIntegers(as: (UInt32, UInt32).self) {
                guard length > 0 else { throw .protocolViolation("block status reply has an extent of length 0") }
                extents.append(NBDExtent(length: length, flags: extentFlags))
            }
            return .chunk(cookie: cookie, .extents(extents))

        default:
            let (errno, messageLength) = body.readMultipleIntegers(as: (UInt32, UInt16).self)!
            guard Int(messageLength) <= body.readableBytes else {
                throw .protocolViolation("error chunk message of \(messageLength) bytes overruns the chunk")
            }
            let message = body.readString(length: Int(messageLength)) ?? ""
            var errorOffset: UInt64?
            if type == NBDChunkType.errorOffset {
                guard body.readableBytes == 8 else { throw .protocolViolation("error-with-offset chunk of wrong length") }
                errorOffset = body.readInteger(as: UInt64.self)
            } else if type == NBDChunkType.error, body.readableBytes != 0 {
                throw .protocolViolation("error chunk longer than its message")
            }
            guard errno != 0 else { throw .protocolViolation("error chunk with error code 0") }
            return .error(cookie: cookie, errno: NBDErrno(rawValue: errno), message: message, offset: errorOffset)
        }
    }
}
