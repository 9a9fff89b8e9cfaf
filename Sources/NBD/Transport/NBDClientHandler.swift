import NIOCore
import NIOTLS

/// The channel handler behind one NBD connection: negotiation bytes first, then replies.
///
/// During negotiation it buffers what the server sends and answers exact-length reads
/// from `Negotiator`. In transmission it assigns cookies, writes requests, decodes
/// replies with `ReplyDecoder` and completes requests. Everything here runs on the
/// channel's event loop, so it needs no locks.
final class NBDClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case negotiating
        case transmission
        case disconnecting
        case closed(NBDError)
    }

    private var phase = Phase.negotiating
    private var context: ChannelHandlerContext?
    /// Bytes received but not yet consumed (negotiation data, or a partial reply header).
    private var received: ByteBuffer?
    private var pendingRead: (count: Int, promise: EventLoopPromise<ByteBuffer>)?
    private var negotiationTimeout: Scheduled<Void>?
    private var decoder = ReplyDecoder()
    private var requests: [UInt64: InFlightRequest] = [:]
    private var nextCookie: UInt64 = 1
    private var flushScheduled = false
    private var drainWaiters: [EventLoopPromise<Void>] = []
    /// The TLS handshake under way after `NBD_OPT_STARTTLS`, and how to word its failure.
    private var tlsHandshake: (setup: TLSClientSetup, promise: EventLoopPromise<Void>)?
    /// Set once the TLS handshake is done and until the server's first answer inside TLS:
    /// a server that rejects the client's certificate hangs up in between.
    private var tlsEstablished: TLSClientSetup?

    /// Requests sent and not yet answered.
    var inFlightCount: Int { requests.count }

    /// Why the connection ended, once it has.
    var closeReason: NBDError? {
        if case .closed(let error) = phase { return error }
        return nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Negotiation

    /// Fails the handshake unless it finishes within `timeout`.
    func armNegotiationTimeout(_ timeout: TimeAmount, eventLoop: any EventLoop) {
        negotiationTimeout = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.fail(.timedOut("server did not finish the handshake within \(timeout.nanoseconds / 1_000_000) ms"))
        }
    }

    /// Returns exactly `count` bytes of negotiation data once they have arrived.
    func readNegotiation(_ count: Int, eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer> {
        if case .closed(let error) = phase { return eventLoop.makeFailedFuture(error) }
        precondition(pendingRead == nil, "one negotiation read at a time")
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        pendingRead = (count, promise)
        satisfyPendingRead()
        return promise.futureResult
    }

    private func satisfyPendingRead() {
        guard let (count, promise) = pendingRead, received?.readableBytes ?? 0 >= count else { return }
        pendingRead = nil
        if count == 0 {
            promise.succeed(ByteBuffer())
        } else {
            promise.succeed(received!.readSlice(length: count)!)
        }
    }

    /// Starts waiting for the TLS handshake the caller is about to start after the server
    /// accepted `NBD_OPT_STARTTLS`; fails if the server already sent bytes in the clear.
    func expectTLSHandshake(_ setup: TLSClientSetup, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        if case .closed(let error) = phase { return eventLoop.makeFailedFuture(error) }
        if let leftover = received?.readableBytes, leftover > 0 {
            let error = NBDError.protocolViolation("server sent \(leftover) bytes in the clear after accepting NBD_OPT_STARTTLS")
            fail(error)
            return eventLoop.makeFailedFuture(error)
        }
        let promise = eventLoop.makePromise(of: Void.self)
        tlsHandshake = (setup, promise)
        return promise.futureResult
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent, let (setup, promise) = tlsHandshake {
            tlsHandshake = nil
            tlsEstablished = setup
            promise.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Switches to transmission; nothing may have arrived beyond the handshake.
    func beginTransmission(structuredReplies: Bool, baseAllocationContextID: UInt32?) throws(NBDError) {
        if case .closed(let error) = phase { throw error }
        negotiationTimeout?.cancel()
        negotiationTimeout = nil
        if let leftover = received?.readableBytes, leftover > 0 {
            let error = NBDError.protocolViolation("server sent \(leftover) unexpected bytes after the handshake")
            fail(error)
            throw error
        }
        received = nil
        decoder.baseAllocationContextID = baseAllocationContextID
        decoder.structuredReplies = structuredReplies
        phase = .transmission
    }

    // MARK: Transmission

    /// Sends `request`; `onComplete` runs once, on the event loop, when its reply is complete.
    func send(_ request: NBDRequest, onChunk: ((NBDReplyChunk) -> Void)?, onComplete: @escaping (Result<Void, NBDError>) -> Void) {
        guard case .transmission = phase, let context else {
            onComplete(.failure(closeReason ?? .invalidRequest("connection is not ready for requests")))
            return
        }
        let cookie = nextCookie
        nextCookie &+= 1
        requests[cookie] = InFlightRequest(request, onChunk: onChunk, onComplete: onComplete)
        var header = context.channel.allocator.buffer(capacity: NBDRequest.headerSize)
        request.writeHeader(cookie: cookie, into: &header)
        context.write(wrapOutboundOut(header), promise: nil)
        for piece in request.payload {
            context.write(wrapOutboundOut(piece), promise: nil)
        }
        scheduleFlush(context)
    }

    /// Flushes once per event-loop tick, so requests sent together share a system call.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    /// Waits for every request in flight, sends `NBD_CMD_DISC` and closes the socket.
    func disconnect(eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard case .transmission = phase else {
            if case .negotiating = phase { fail(.connectionClosed("closed by the client")) }
            return eventLoop.makeSucceededVoidFuture()
        }
        phase = .disconnecting
        let drained = eventLoop.makePromise(of: Void.self)
        if requests.isEmpty { drained.succeed() } else { drainWaiters.append(drained) }
        return drained.futureResult.assumeIsolated().flatMap { () -> EventLoopFuture<Void> in
            guard let context = self.context, case .disconnecting = self.phase else {
                return eventLoop.makeSucceededVoidFuture()
            }
            var header = context.channel.allocator.buffer(capacity: NBDRequest.headerSize)
            NBDRequest(type: .disconnect).writeHeader(cookie: self.nextCookie, into: &header)
            self.phase = .closed(.connectionClosed("closed by the client"))
            let written = context.writeAndFlush(self.wrapOutboundOut(header))
            return written.assumeIsolated().flatMap { context.close() }.nonisolated()
        }.nonisolated()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch phase {
        case .negotiating:
            tlsEstablished = nil
            if received == nil || received!.readableBytes == 0 {
                received = buffer
            } else {
                received!.writeBuffer(&buffer)
            }
            satisfyPendingRead()
        case .transmission, .disconnecting:
            if var leftover = received, leftover.readableBytes > 0 {
                leftover.writeBuffer(&buffer)
                buffer = leftover
            }
            received = nil
            decodeReplies(&buffer)
            if case .closed = phase { return }
            if buffer.readableBytes > 0 { received = buffer }
        case .closed:
            break
        }
    }

    private func decodeReplies(_ buffer: inout ByteBuffer) {
        do {
            while true {
                switch phase {
                case .transmission, .disconnecting: break
                default: return
                }
                guard let event = try decoder.next(from: &buffer, lookup: { requests[$0]?.shape }) else { return }
                dispatch(event)
            }
        } catch {
            fail(error)
        }
    }

    private func dispatch(_ event: ReplyDecoder.Event) {
        switch event {
        case .chunk(let cookie, let chunk):
            guard let request = requests[cookie] else { return }
            switch chunk {
            case .data(_, let bytes): request.coveredBytes += UInt64(bytes.readableBytes)
            case .hole(_, let length): request.coveredBytes += UInt64(length)
            case .extents: request.receivedExtents = true
            }
            if request.type == .read, request.coveredBytes > UInt64(request.length) {
                fail(.protocolViolation("READ reply covers \(request.coveredBytes) bytes, more than the \(request.length) asked for at \(request.offset)"))
                return
            }
            request.onChunk?(chunk)
        case .error(let cookie, let errno, let message, let offset):
            guard let request = requests[cookie], request.error == nil else { return }
            request.error = .serverError(command: request.type, offset: offset ?? request.offset,
                                         length: UInt64(request.length), errno: errno, message: message)
        case .done(let cookie):
            guard let request = requests.removeValue(forKey: cookie) else { return }
            if let error = request.error {
                request.onComplete(.failure(error))
            } else if request.type == .read && request.coveredBytes != UInt64(request.length)
                        || request.type == .blockStatus && !request.receivedExtents {
                let error = request.type == .read
                    ? NBDError.protocolViolation("READ reply covers \(request.coveredBytes) of the \(request.length) bytes asked for at \(request.offset)")
                    : NBDError.protocolViolation("BLOCK_STATUS reply at \(request.offset) has no base:allocation extents")
                request.onComplete(.failure(error))
                fail(error)
                return
            } else {
                request.onComplete(.success(()))
            }
            if requests.isEmpty { wakeDrainWaiters() }
        }
    }

    private func wakeDrainWaiters() {
        let waiters = drainWaiters
        drainWaiters = []
        for waiter in waiters { waiter.succeed() }
    }

    // MARK: Failure

    func channelInactive(context: ChannelHandlerContext) {
        switch phase {
        case .negotiating:
            if let (setup, _) = tlsHandshake {
                fail(setup.closedDuringHandshake)
            } else if let tlsEstablished {
                fail(tlsEstablished.endedAfterHandshake("it closed the connection"))
            } else {
                fail(.connectionClosed("server closed the connection during the handshake"))
            }
        case .transmission, .disconnecting:
            let partial = decoder.isIdle ? "" : " in the middle of a reply"
            fail(.connectionClosed("server closed the connection\(partial)"))
        case .closed:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let (setup, _) = tlsHandshake {
            fail(setup.failure(error))
        } else if let tlsEstablished, case .negotiating = phase {
            fail(tlsEstablished.endedAfterHandshake(TLSFailure.describe(error)))
        } else {
            fail(.connectionClosed(TLSFailure.describe(error)))
        }
    }

    /// Ends the connection: every waiting read and request fails with `error`.
    func fail(_ error: NBDError) {
        if case .closed = phase { return }
        phase = .closed(error)
        negotiationTimeout?.cancel()
        negotiationTimeout = nil
        if let (_, promise) = pendingRead {
            pendingRead = nil
            promise.fail(error)
        }
        if let (_, promise) = tlsHandshake {
            tlsHandshake = nil
            promise.fail(error)
        }
        let failed = requests.values
        requests = [:]
        for request in failed { request.onComplete(.failure(error)) }
        wakeDrainWaiters()
        context?.close(promise: nil)
    }
}
