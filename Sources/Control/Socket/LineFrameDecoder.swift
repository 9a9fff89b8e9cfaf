import NIOCore

/// Splits a byte stream into lines (without their `\n`, and without a `\r` before it), each
/// at most `maximumLineBytes` long.
///
/// A peer that sends a longer line, or keeps sending without a newline, gets
/// `LineTooLongError` as soon as the bound is passed, so that nothing it sends can make us
/// buffer more than the bound.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maximumLineBytes: Int
    /// Bytes of the buffer already searched for a newline, so each byte is looked at once.
    private var searched = 0

    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let readable = buffer.readableBytesView
        guard let newline = readable.dropFirst(searched).firstIndex(of: UInt8(ascii: "\n")) else {
            searched = readable.count
            if searched > maximumLineBytes { throw LineTooLongError(maximumLineBytes: maximumLineBytes) }
            return .needMoreData
        }
        let length = newline - readable.startIndex
        guard length <= maximumLineBytes else { throw LineTooLongError(maximumLineBytes: maximumLineBytes) }
        searched = 0
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: length - 1)! }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // A last line without its newline is not a complete message: dropped.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// A peer sent a line longer than the decoder allows.
public struct LineTooLongError: Error, CustomStringConvertible {
    public var maximumLineBytes: Int
    public var description: String { "line longer than \(maximumLineBytes) bytes" }
}
