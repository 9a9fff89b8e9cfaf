import NBD
import Telemetry
import NIOCore

/// One client connection and its own upstream connection, with the bytes between them.
///
/// Confined to one event loop: both channels live on it, so the pair needs no lock. Each
/// side's `RelayHandler` hands it what arrived; it runs `RelayDecoder`, writes the slices
/// to the other side, and records what it saw in `ClientFigures`.
///
/// Backpressure: a side is read only while the other side's channel is writable (and the
/// client only while the decoder wants its bytes), so a fast sender and a slow receiver
/// never pile up more than a channel's high water mark in between.
///
/// With `upstreamTLS` the pair starts TLS on the upstream connection when the decoder says
/// the server accepted the relay's `NBD_OPT_STARTTLS`, and lets the client's options go on
/// once the handshake is done. If the server refuses or the handshake fails, the upstream
/// connection is closed at once and the client is turned away: its options are answered
/// with the reason until it gives up, and nothing of it ever reaches the server in the clear.
final class RelayPair {
    let figures: ClientFigures
    let eventLoop: any EventLoop
    private var decoder: RelayDecoder
    private let upstreamTLS: RelayTLS?
    /// Between inserting the TLS handler and its handshake's end.
    private var upstreamHandshaking = false
    /// Why the client is being turned away, once it is.
    private var turnedAway: String?
    private var contexts: [RelaySide: ChannelHandlerContext] = [:]
    private var pendingRead: Set<RelaySide> = []
    private var needsFlush: Set<RelaySide> = []
    private var ended = false
    private var stallTimer: RepeatedTask?
    private let coverage: CoverageRecorder
    private let report: @Sendable (ProxyEvent) -> Void
    private let onEnd: (ClientSnapshot) -> Void

    /// How often a stall is looked for, as a copy's lanes do.
    static let stallCheckInterval = TimeAmount.milliseconds(20)

    init(figures: ClientFigures, eventLoop: any EventLoop, upstreamTLS: RelayTLS?, coverage: CoverageRecorder,
         report: @escaping @Sendable (ProxyEvent) -> Void, onEnd: @escaping (ClientSnapshot) -> Void) {
        self.figures = figures
        self.eventLoop = eventLoop
        self.upstreamTLS = upstreamTLS
        self.decoder = RelayDecoder(upstreamTLS: upstreamTLS != nil)
        self.coverage = coverage
        self.report = report
        self.onEnd = onEnd
    }

    // MARK: From the handlers

    func attach(_ context: ChannelHandlerContext, side: RelaySide) {
        contexts[side] = context
    }

    func becameActive(_ side: RelaySide) {
        if contexts[.client]?.channel.isActive == true && contexts[.server]?.channel.isActive == true && stallTimer == nil {
            let pair = NIOLoopBound(self, eventLoop: eventLoop)
            stallTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.stallCheckInterval, delay: Self.stallCheckInterval) { _ in
                pair.value.checkStall()
            }
            report(.clientConnected(id: figures.id, client: figures.client))
        }
        retryRead(side.other)
        retryRead(side)
    }

    /// Whether `side` may be read now.
    private func mayRead(_ side: RelaySide) -> Bool {
        guard !ended else { return false }
        // A turned-away client is read until it gives up; its upstream is gone.
        if turnedAway != nil { return side == .client }
        guard let other = contexts[side.other]?.channel, other.isActive, other.isWritable else { return false }
        return side == .server || decoder.wantsClientBytes
    }

    /// A read of `side` was asked for: done now, or when the other side can take more.
    func read(_ side: RelaySide) {
        if mayRead(side) {
            contexts[side]?.read()
        } else {
            pendingRead.insert(side)
        }
    }

    func retryRead(_ side: RelaySide) {
        guard pendingRead.contains(side), mayRead(side) else { return }
        pendingRead.remove(side)
        contexts[side]?.read()
    }

    func received(_ buffer: ByteBuffer, from side: RelaySide) {
        guard !ended else { return }
        decode { decoder throws(RelayViolation) in
            side == .client ? try decoder.clientSent(buffer) : try decoder.serverSent(buffer)
        }
        if side == .server { retryRead(.client) }
    }

    /// The upstream's TLS handshake is done: the client's options go on.
    func upstreamTLSEstablished() {
        guard upstreamHandshaking, !ended else { return }
        upstreamHandshaking = false
        decode { decoder throws(RelayViolation) in try decoder.upstreamTLSEstablished() }
        flushWrites()
        retryRead(.client)
    }

    /// Runs the decoder and performs what it returns; a violation ends the pair.
    private func decode(_ step: (inout RelayDecoder) throws(RelayViolation) -> [RelayEvent]) {
        let events: [RelayEvent]
        do {
            events = try step(&decoder)
        } catch {
            end(failed: true, reason: turnedAway.map { "\($0); then \(error)" } ?? "\(error)")
            return
        }
        perform(events)
    }

    private func perform(_ events: [RelayEvent]) {
        let now = NIODeadline.now()
        for event in events {
            switch event {
            case .toServer(let bytes):
                contexts[.server]?.write(NIOAny(bytes), promise: nil)
                needsFlush.insert(.server)
            case .toClient(let bytes):
                contexts[.client]?.write(NIOAny(bytes), promise: nil)
                needsFlush.insert(.client)
            case .requestSent(let request):
                figures.requestSent(request, now: now)
            case .replyReceived(let request, let error):
                replyReceived(request, error: error, now: now)
            case .transmissionStarted(let size, _):
                figures.state = .active
                figures.exportSize = size
                if let size { coverage.prepare(exportSize: size) }
            case .optionSent, .optionAnsweredByRelay:
                break
            case .upstreamTLSAccepted:
                startUpstreamTLS()
            case .upstreamTLSRefused(let replyType, let message):
                turnAway(RelayTLS.refused(replyType: replyType, message: message))
            case .clientTurnedAway:
                end(failed: true, reason: turnedAway ?? "the client was turned away")
            }
        }
    }

    // MARK: TLS towards the server

    private func startUpstreamTLS() {
        guard let upstreamTLS, let channel = contexts[.server]?.channel else { return }
        do {
            try upstreamTLS.start(on: channel)
            upstreamHandshaking = true
        } catch {
            turnAway(error)
        }
    }

    /// Closes the upstream connection and answers the client's options with `reason` until
    /// it gives up: never a byte of it to the server in the clear.
    private func turnAway(_ reason: NBDError) {
        guard turnedAway == nil, !ended else { return }
        let text = "upstream: \(reason)"
        turnedAway = text
        upstreamHandshaking = false
        contexts[.server]?.close(promise: nil)
        decode { decoder throws(RelayViolation) in try decoder.turnAwayClient(text) }
        flushWrites()
        retryRead(.client)
    }

    private func replyReceived(_ request: RelayedRequest, error: NBDErrno?, now: NIODeadline) {
        if let latency = figures.replyReceived(request, error: error, now: now) {
            report(.slowRequest(id: figures.id, kind: RequestKind(request.type), offset: request.offset,
                                length: UInt64(request.length), latency: latency))
        }
        guard error == nil, let size = figures.exportSize else { return }
        switch request.type {
        case .read: coverage.record(exportSize: size, offset: request.offset, length: UInt64(request.length), written: false)
        case .write, .writeZeroes, .trim:
            coverage.record(exportSize: size, offset: request.offset, length: UInt64(request.length), written: true)
        default: break
        }
    }

    func readComplete(_ side: RelaySide) {
        flushWrites()
    }

    private func flushWrites() {
        for target in needsFlush { contexts[target]?.flush() }
        needsFlush = []
    }

    func writabilityChanged(_ side: RelaySide) {
        if contexts[side]?.channel.isWritable == true { retryRead(side.other) }
    }

    /// `side`'s connection ended: on its own (`error` nil) or with a reset or other error.
    func closed(_ side: RelaySide, error: (any Error)? = nil) {
        guard !ended else { return }
        if let turnedAway {
            if side == .client { end(failed: true, reason: turnedAway) }
            return
        }
        if side == .server, upstreamHandshaking, let upstreamTLS {
            turnAway(upstreamTLS.handshakeFailure(error))
            return
        }
        let inFlight = decoder.requestsInFlight
        let requests = "\(inFlight) request\(inFlight == 1 ? "" : "s") in flight"
        let detail = error.map { " (\($0))" } ?? ""
        switch side {
        case _ where decoder.clientDisconnected && inFlight == 0:
            // The client said goodbye (NBD_CMD_DISC or NBD_OPT_ABORT) and the upstream answers
            // by closing: which socket is seen to close first is a race that must not change
            // what is reported.
            end(failed: false, reason: "client disconnected")
        case .client where inFlight == 0:
            end(failed: error != nil, reason: "client closed the connection\(detail)")
        case .client:
            end(failed: true, reason: "client went away with \(requests)\(detail)")
        case .server where inFlight > 0:
            end(failed: true, reason: "upstream went away with \(requests)\(detail)")
        case .server:
            end(failed: true, reason: "upstream closed the connection\(detail)")
        }
    }

    // MARK: Ending

    /// Closes both connections, once, and tells why.
    func end(failed: Bool, reason: String) {
        guard !ended else { return }
        ended = true
        stallTimer?.cancel()
        stallTimer = nil
        figures.state = failed ? .failed : .closed
        figures.reason = reason
        for context in contexts.values {
            context.flush()
            context.close(promise: nil)
        }
        // Out of the registry before the event, so a listener hearing it counts the clients right.
        onEnd(figures.snapshot(now: .now()))
        report(.clientLeft(id: figures.id, client: figures.client, failed: failed, reason: reason))
    }

    private func checkStall() {
        if let stall = figures.evaluateStall(now: .now()) {
            report(.stall(id: figures.id, oldestAge: stall.oldestAge, held: stall.held))
        }
    }
}

extension RelaySide {
    var other: RelaySide { self == .client ? .server : .client }
}
