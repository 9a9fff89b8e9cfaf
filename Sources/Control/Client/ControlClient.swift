import NIOCore
import NIOPosix
import Telemetry

/// The client side of a control socket, for `ls` and `attach`.
public enum ControlClient {
    /// A hello (with a long event history and many connections) can be far longer than a
    /// command; this bounds what a misbehaving server can make a client buffer.
    public static let maximumLineBytes = 16 << 20

    /// Connects to `path` and returns the `hello` the copy sends first; throws when nothing
    /// answers, the first line is not a hello, or none arrives within `timeout`.
    public static func hello(at path: String, timeout: Duration = .seconds(2),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> JSONValue {
        let eventLoop = group.next()
        let first = eventLoop.makePromise(of: ByteBuffer.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.nanoseconds(timeout.nanoseconds))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maximumLineBytes)),
                            FirstLineHandler(first))
                    }
                }
                .connect(unixDomainSocketPath: path).get()
        } catch {
            // A copy that is ending closes its socket: `ls` may connect just then. The
            // promise must not be left unfulfilled (a debug build traps on that).
            first.fail(error)
            throw error
        }
        let timer = eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            first.fail(ControlDirectoryError("\(path): no hello within \(timeout)"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        let line = try await first.futureResult.get()
        let hello = try JSONValue.parse(line.readableBytesView)
        guard hello["event"]?.string == "hello", hello["v"]?.int == 1 else {
            throw ControlDirectoryError("\(path): the first line is not a version 1 hello")
        }
        return hello
    }
}

/// Hands the first line to a promise; fails it when the connection ends first.
private final class FirstLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<ByteBuffer>

    init(_ promise: EventLoopPromise<ByteBuffer>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ControlDirectoryError("the copy closed the connection"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
