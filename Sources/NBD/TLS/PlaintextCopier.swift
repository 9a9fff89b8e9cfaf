import NIOCore

/// Passes each buffer of plaintext from `NIOSSLClientHandler` on as a copy of its own.
///
/// The TLS handler decrypts into one buffer it reuses for every read. What comes after it
/// keeps slices of what it is given (the reply decoder's READ payloads on their way to the
/// destination and replies not yet complete, the proxy's bytes waiting for the client's
/// socket), so that buffer would still be shared when the next record arrives, and the TLS
/// handler would copy it whole, spare capacity and old bytes included, before every read.
/// Copying the new bytes once, here, is cheaper than that, and keeps the TLS handler's
/// buffer its own. It sits behind every TLS handler nbdtop inserts.
final class PlaintextCopier: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let plaintext = unwrapInboundIn(data)
        var copy = context.channel.allocator.buffer(capacity: plaintext.readableBytes)
        copy.writeImmutableBuffer(plaintext)
        context.fireChannelRead(wrapInboundOut(copy))
    }
}
