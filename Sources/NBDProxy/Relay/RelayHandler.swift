import NBD
import NIOCore

/// One side of a `RelayPair` in its channel's pipeline: hands the pair what arrives and
/// holds back reads the pair does not want yet.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pair: RelayPair
    private let side: RelaySide

    init(pair: RelayPair, side: RelaySide) {
        self.pair = pair
        self.side = side
    }

    func handlerAdded(context: ChannelHandlerContext) {
        pair.attach(context, side: side)
        if context.channel.isActive { pair.becameActive(side) }
    }

    func channelActive(context: ChannelHandlerContext) {
        pair.becameActive(side)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pair.received(unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        pair.readComplete(side)
    }

    func read(context: ChannelHandlerContext) {
        pair.read(side)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pair.writabilityChanged(side)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if side == .server, RelayTLS.isHandshakeCompleted(event) { pair.upstreamTLSEstablished() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pair.closed(side)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pair.closed(side, error: error)
    }
}
