import NIOCore

/// Reads the cipher suite out of the server's TLS hello as it passes, then leaves.
///
/// It sits at the front of the pipeline, before `NIOSSLClientHandler`, and passes every
/// byte on untouched. The ServerHello is the first handshake message the server sends
/// and is never encrypted: a record header (type 22), a handshake header (type 2), the
/// legacy version and random, the session id, then the suite's two bytes.
final class ServerHelloObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The suite's code point, once the hello has been seen.
    private(set) var cipherSuite: UInt16?
    /// The start of the server's stream, kept until the hello is complete.
    private var seen = ByteBuffer()
    /// Enough for any hello's fixed part; a stream that does not start with one is given up on.
    private static let maximumPrefix = 16 * 1024

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard cipherSuite == nil else {
            context.fireChannelRead(data)
            return
        }
        // Parsed before passing on: the same bytes may complete the handshake, and whoever
        // waits for it asks for the suite right then.
        var copy = buffer
        seen.writeBuffer(&copy)
        var done = true
        switch Self.parse(seen) {
        case .found(let suite): cipherSuite = suite
        case .needMore: done = seen.readableBytes >= Self.maximumPrefix
        case .notAHello: break
        }
        context.fireChannelRead(data)
        if done {
            // Only after passing them on: a handler that has left can no longer pass bytes on.
            seen = ByteBuffer()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    enum ParseResult: Equatable {
        case found(UInt16)
        case needMore
        case notAHello
    }

    /// Finds the suite in the first bytes of a server's TLS stream.
    static func parse(_ stream: ByteBuffer) -> ParseResult {
        var bytes = stream
        guard let recordType = bytes.readInteger(as: UInt8.self) else { return .needMore }
        guard recordType == 22 else { return .notAHello }
        // Record version (2), record length (2), handshake type (1), handshake length (3),
        // legacy version (2), random (32).
        guard bytes.readableBytes >= 2 + 2 + 1 + 3 + 2 + 32 + 1 else { return .needMore }
        bytes.moveReaderIndex(forwardBy: 4)
        guard bytes.readInteger(as: UInt8.self) == 2 else { return .notAHello }
        bytes.moveReaderIndex(forwardBy: 3 + 2 + 32)
        let sessionIDLength = Int(bytes.readInteger(as: UInt8.self)!)
        guard bytes.readableBytes >= sessionIDLength + 2 else { return .needMore }
        bytes.moveReaderIndex(forwardBy: sessionIDLength)
        return .found(bytes.readInteger(as: UInt16.self)!)
    }
}
