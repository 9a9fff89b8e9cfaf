import NBD
import NBDCopy
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
final class RelayPair {
    let figures: ClientFigures
    let eventLoop: any EventLoop
    private var decoder = RelayDecoder()
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

    init(figures: ClientFigures, eventLoop: any EventLoop, coverage: CoverageRecorder,
         report: @escaping @Sendable (ProxyEvent) -> Void, onEnd: @escaping (ClientSnapshot) -> Void) {
        self.figures = figures
        self.eventLoop = eventLoop
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
        guard !ended, let other = contexts[side.other]?.channel, other.isActive, other.isWritable else { return false }
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
        let events: [RelayEvent]
        do {
            events = side == .client ? try decoder.clientSent(buffer) : try decoder.serverSent(buffer)
        } catch {
            end(failed: true, reason: "\(error)")
            return
        }
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
            }
        }
        if side == .server { retryRead(.client) }
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
        for target in needsFlush { contexts[target]?.flush() }
        needsFlush = []
    }

    func writabilityChanged(_ side: RelaySide) {
        if contexts[side]?.channel.isWritable == true { retryRead(side.other) }
    }

    /// `side`'s connection ended: on its own (`error` nil) or with a reset or other error.
    func closed(_ side: RelaySide, error: (any Error)? = nil) {
        guard !ended else { return }
        let inFlight = decoder.requestsInFlight
        let requests = "\(inFlight) request\(inFlight == 1 ? "" : "s") in flight"
        let detail = error.map { " (\($0))" } ?? ""
        switch side {
        case .client where inFlight == 0:
            end(failed: error != nil && !decoder.clientDisconnected, reason: "client closed the connection\(detail)")
        case .client:
            end(failed: true, reason: "client went away with \(requests)\(detail)")
        case .server where inFlight > 0:
            end(failed: true, reason: "upstream went away with \(requests)\(detail)")
        case .server:
            end(failed: !decoder.clientDisconnected, reason: "upstream closed the connection\(detail)")
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
