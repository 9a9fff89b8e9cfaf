import NIOCore

/// One client's commands: each line is parsed and answered, in order, with
/// `{"ok":true}` or `{"ok":false,"error":...}`.
///
/// A line that is not a command is answered with an error and changes nothing; a line over
/// the framing bound is answered with an error and the client is closed (the rest of that
/// line cannot be told from a next command). Commands run one after another, so replies
/// come in the order of the commands; at most `maximumPendingCommands` wait, later ones are
/// refused at once.
final class ControlConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let hub: ControlHub
    /// Completes when the previous command has been answered. Event loop only.
    private var previous: EventLoopFuture<Void>?
    private var pending = 0
    /// A line was too long: what the peer sends from now on is dropped until it closes.
    private var refused = false

    static let maximumPendingCommands = 16

    init(hub: ControlHub) {
        self.hub = hub
    }

    func channelActive(context: ChannelHandlerContext) {
        // Not before: a line queued on a channel that is not active yet would be dropped.
        hub.attach(context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let channel = context.channel
        let command: ControlCommand
        do {
            command = try ControlCommand(line: line.readableBytesView)
        } catch {
            hub.reply(ControlReply.failure(error.message), to: channel)
            return
        }
        if case .interval(let milliseconds) = command {
            hub.setInterval(.milliseconds(milliseconds), for: channel)
            hub.reply(ControlReply.success(command, [("ms", .int(Int64(milliseconds)))]), to: channel)
            return
        }
        guard pending < Self.maximumPendingCommands else {
            hub.reply(ControlReply.failure("too many commands waiting; wait for their replies", command: command), to: channel)
            return
        }
        pending += 1
        let eventLoop = context.eventLoop
        let start = previous ?? eventLoop.makeSucceededVoidFuture()
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        previous = start.flatMap { [hub] in
            let reply = eventLoop.makePromise(of: String.self)
            reply.completeWithTask {
                do throws(ControlCommandError) {
                    return ControlReply.success(command, try await hub.perform(command))
                } catch {
                    return ControlReply.failure(error.message, command: command)
                }
            }
            return reply.futureResult.map { line in
                loopBound.value.pending -= 1
                hub.reply(line, to: channel)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? LineTooLongError {
            refused = true
            hub.reply(ControlReply.failure("\(error); closing"), to: context.channel, thenClose: true)
        } else if !refused {
            context.close(promise: nil)
        }
    }
}
