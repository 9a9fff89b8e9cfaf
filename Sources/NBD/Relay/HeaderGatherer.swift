import NIOCore

/// Collects a fixed-size header that may arrive split across reads.
///
/// When the whole header is in the buffer it is a slice of it, not a copy; otherwise the
/// pieces are copied into a buffer that never holds more than one header.
struct HeaderGatherer {
    private var partial = ByteBuffer()

    /// Bytes gathered towards the next header.
    var pendingBytes: Int { partial.readableBytes }

    /// The first four bytes of the next header (its magic), once they are in.
    mutating func peekMagic(from buffer: inout ByteBuffer) -> UInt32? {
        if partial.readableBytes == 0, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) {
            return magic
        }
        guard fill(to: 4, from: &buffer) else { return nil }
        return partial.getInteger(at: partial.readerIndex, as: UInt32.self)
    }

    /// The next `count` bytes, or nil (having kept what there was) when more are needed.
    mutating func gather(_ count: Int, from buffer: inout ByteBuffer) -> ByteBuffer? {
        if partial.readableBytes == 0, let slice = buffer.readSlice(length: count) { return slice }
        guard fill(to: count, from: &buffer) else { return nil }
        defer { partial = ByteBuffer() }
        return partial
    }

    private mutating func fill(to count: Int, from buffer: inout ByteBuffer) -> Bool {
        let missing = count - partial.readableBytes
        if missing > 0 {
            var piece = buffer.readSlice(length: min(missing, buffer.readableBytes))!
            partial.writeBuffer(&piece)
        }
        return partial.readableBytes >= count
    }
}
